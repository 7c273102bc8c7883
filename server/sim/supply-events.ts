// Events on the simulated supply itself (issue 13 item 8): a neighbour's motor start dips the voltage,
// a recloser interrupts it. Deterministic per seed; the load applies the factor once per segment.

/**
 * A kind of supply event: from its start the voltage is multiplied by `depth` and recovers linearly to
 * 1 over its duration (`recovers`, a motor start) or stays at `depth` until it ends (an interruption).
 */
export interface SupplyEventSpec {
  readonly name: string;
  readonly meanIntervalS: number;
  readonly depth: readonly [number, number];
  readonly durationS: readonly [number, number];
  readonly recovers: boolean;
  /** When the first may start, s of device time (default FIRST_SUPPLY_EVENT_S; tests want one early). */
  readonly firstS?: number;
}

/** No supply event in the first minutes: short runs (the tests, a quick look) see a steady supply. */
export const FIRST_SUPPLY_EVENT_S = 120;

export const MAINS_EVENTS: readonly SupplyEventSpec[] = [
  { name: 'motor-start dip', meanIntervalS: 900, depth: [0.55, 0.85], durationS: [0.2, 1.5], recovers: true },
  { name: 'short interruption', meanIntervalS: 3600, depth: [0, 0], durationS: [0.08, 0.6], recovers: false },
];

/** The supply events of one kind, drawn lazily from their own PRNG stream (like load.ts's Schedule). */
export class SupplyEvents {
  private startS = 0;
  private endS = 0;
  private depth = 1;

  /** `rng.next()`: uniform in [0, 1) (load.ts's XorShift32, seeded per scenario and kind). */
  constructor(private readonly spec: SupplyEventSpec, private readonly rng: { next(): number }) {
    this.draw(spec.firstS ?? FIRST_SUPPLY_EVENT_S);
  }

  private draw(afterS: number): void {
    const u = (range: readonly [number, number]): number => range[0] + (range[1] - range[0]) * this.rng.next();
    this.startS = afterS + -Math.log(1 - this.rng.next()) * this.spec.meanIntervalS;
    this.endS = this.startS + u(this.spec.durationS);
    this.depth = u(this.spec.depth);
  }

  /** The voltage factor at tS (time only moves forward). */
  factorAt(tS: number): number {
    while (tS >= this.endS) this.draw(this.endS);
    if (tS < this.startS) return 1;
    if (!this.spec.recovers) return this.depth;
    return this.depth + (1 - this.depth) * ((tS - this.startS) / (this.endS - this.startS));
  }
}
