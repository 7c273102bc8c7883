// IEC 61000-4-30 on the decimated voltage stream: Urms(1/2), dips, swells and interruptions, and the
// 10 s frequency. (The 150/180-cycle and 10-minute aggregation is in aggregate.ts.)
//
// Urms(1/2) (§5.4.1): the RMS over one cycle that starts at a fundamental zero crossing, refreshed at
// every half-cycle crossing. Crossings are found on the stream with hysteresis and placed by linear
// interpolation between the samples around them. Without crossings (an interruption) a boundary is
// placed every half period of the last measured frequency, so Urms(1/2) keeps its refresh rate.
//
// Events (§5.4.2–5.4.4): an event starts when Urms(1/2) crosses its threshold and ends when it is back
// beyond the threshold plus the hysteresis; the extreme is the lowest (dip, interruption) or highest
// (swell) Urms(1/2) during it. Dips and interruptions are detected independently, as the standard
// describes, so an interruption is usually also inside a dip. The Urms(1/2) crossing lags a step change
// by up to one and a half cycles, so the start and the end are then located on the waveform itself:
// the first sample that differs from the one a period earlier by more than half the smallest threshold
// distance (a step at any phase shows within a few percent of a cycle). Where no such sample exists (a
// slow change) the standard's time stamps stand: the start of the Urms(1/2) cycle that began the event,
// the end of the one that ended it.
//
// All times are device sample indices (fractional where interpolated), the same axis as the windows.

export type EventKind = 'dip' | 'swell' | 'interruption';

export interface VoltageThresholds {
  /** declared supply voltage Udin, V */
  declaredV: number;
  /** nominal frequency, Hz (50 or 60) */
  nominalHz: number;
  /** thresholds and hysteresis in % of Udin (IEC 61000-4-30 / EN 50160 defaults) */
  dipPct: number;
  swellPct: number;
  interruptionPct: number;
  hysteresisPct: number;
}

export const DEFAULT_THRESHOLDS: Omit<VoltageThresholds, 'declaredV' | 'nominalHz'> = Object.freeze({
  dipPct: 90,
  swellPct: 110,
  interruptionPct: 5,
  hysteresisPct: 2,
});

export interface HalfCycleValue {
  /** the cycle [start, end) the value is the RMS of */
  start: number;
  end: number;
  urms: number;
}

export interface PqEvent {
  kind: EventKind;
  start: number;
  end: number;
  /** residual (dip, interruption) or maximum (swell) Urms(1/2), V */
  extremeV: number;
  /** the stream had a gap before the event ended: `end` is where the stream stopped */
  cutByGap: boolean;
}

export interface FrequencyValue {
  /** the 10 s interval [start, end) */
  start: number;
  end: number;
  /** integral cycles ending in the interval over their cumulative duration; null without any */
  hz: number | null;
}

export class ThresholdError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = 'ThresholdError';
  }
}

export function validateThresholds(t: VoltageThresholds): void {
  const positive = (name: string, x: number): void => {
    if (!Number.isFinite(x) || x <= 0) throw new ThresholdError(`${name} must be a finite number > 0, got ${x}`);
  };
  positive('declared voltage', t.declaredV);
  positive('nominal frequency', t.nominalHz);
  positive('hysteresis', t.hysteresisPct);
  if (!(t.interruptionPct > 0 && t.interruptionPct < t.dipPct && t.dipPct < 100 && t.swellPct > 100)) {
    throw new ThresholdError(
      `thresholds must satisfy 0 < interruption < dip < 100 < swell (%), got ${t.interruptionPct}, ${t.dipPct}, ${t.swellPct}`,
    );
  }
}

const FREQUENCY_INTERVAL_S = 10;
/** Rising crossings the period estimate is averaged over. */
const PERIOD_CYCLES = 8;
/** Cycles of waveform history kept for Urms(1/2) and for locating event edges. */
const HISTORY_CYCLES = 8;

interface Detector {
  kind: EventKind;
  /** is u beyond the start threshold / back within the end threshold */
  begins: (u: number) => boolean;
  ends: (u: number) => boolean;
  /** `located`: the start was found on the waveform (so the waveform after it can place a short event's end) */
  open: { start: number; extreme: number; located: boolean } | null;
}

export class VoltageMonitor {
  readonly events: PqEvent[] = [];
  readonly halfCycles: HalfCycleValue[] = [];
  readonly frequencies: FrequencyValue[] = [];
  private readonly detectors: Detector[];
  private readonly interval: number;
  private readonly edgeThresholdV: number;
  private readonly zcHysteresisV: number;
  private hist = new Float64Array(4096);
  private histLen = 0;
  /** device index of hist[0] */
  private histFirst = 0;
  private period: number;
  private boundaries: number[] = [];
  private armedNeg = false;
  private armedPos = false;
  /** where the sign last changed since the wave was last beyond the hysteresis */
  private candidate: number | null = null;
  private risings: number[] = [];
  private freqInterval = -1;
  private freqCycles = 0;
  private freqDuration = 0;
  /** device index one past the last sample pushed (NaN before any) */
  private next = NaN;

  constructor(
    readonly thresholds: VoltageThresholds,
    private readonly deviceRateHz: number,
    private readonly decimation: number,
  ) {
    validateThresholds(thresholds);
    const u = thresholds.declaredV / 100;
    const h = thresholds.hysteresisPct * u;
    this.detectors = [
      { kind: 'dip', begins: (x) => x < thresholds.dipPct * u, ends: (x) => x >= thresholds.dipPct * u + h, open: null },
      { kind: 'swell', begins: (x) => x > thresholds.swellPct * u, ends: (x) => x <= thresholds.swellPct * u - h, open: null },
      {
        kind: 'interruption',
        begins: (x) => x < thresholds.interruptionPct * u,
        ends: (x) => x >= thresholds.interruptionPct * u + h,
        open: null,
      },
    ];
    this.period = deviceRateHz / thresholds.nominalHz;
    this.interval = FREQUENCY_INTERVAL_S * deviceRateHz;
    const smallestDistancePct = Math.min(100 - thresholds.dipPct, thresholds.swellPct - 100);
    this.edgeThresholdV = (Math.SQRT2 * smallestDistancePct * u) / 2;
    // Arms the crossing detector well above noise and well below any voltage worth a cycle.
    this.zcHysteresisV = Math.SQRT2 * (thresholds.interruptionPct / 2) * u;
  }

  /** The stream is continuous from firstIndex on (call gap() first when it is not). */
  push(v: Float64Array, firstIndex: number): void {
    if (!Number.isNaN(this.next) && firstIndex !== this.next) {
      throw new RangeError(`stream resumes at ${firstIndex}, expected ${this.next}: call gap() at a discontinuity`);
    }
    this.next = firstIndex + v.length * this.decimation;
    for (let k = 0; k < v.length; k++) this.sample(v[k]!, firstIndex + k * this.decimation);
    this.trimHistory();
  }

  /** The stream stopped at `index` and resumes elsewhere: open events end there, crossings restart. */
  gap(index: number): void {
    for (const d of this.detectors) {
      if (d.open) this.events.push({ kind: d.kind, start: d.open.start, end: index, extremeV: d.open.extreme, cutByGap: true });
      d.open = null;
    }
    this.boundaries = [];
    this.histLen = 0;
    this.armedNeg = this.armedPos = false;
    this.candidate = null;
    this.risings = [];
    this.freqInterval = -1;
    this.next = NaN;
  }

  /** Is an event open or did one overlap [start, end)? */
  eventDuring(start: number, end: number): boolean {
    if (this.detectors.some((d) => d.open !== null && d.open.start < end)) return true;
    return this.events.some((e) => e.start < end && e.end > start);
  }

  /** Events that touch samples before `index` are known once the stream is this far past it. */
  settledAfter(index: number): boolean {
    return !Number.isNaN(this.next) && this.next >= index + 2 * this.period;
  }

  private sample(x: number, index: number): void {
    if (this.histLen === this.hist.length) {
      const grown = new Float64Array(this.hist.length * 2);
      grown.set(this.hist);
      this.hist = grown;
    }
    if (this.histLen === 0) this.histFirst = index;
    this.hist[this.histLen++] = x;
    if (this.histLen < 2) return;
    const prev = this.hist[this.histLen - 2]!;
    // A crossing counts once the wave has gone from beyond −h to beyond +h (or back): a step to zero
    // (an interruption) is no crossing. It is placed where the sign changed last on the way.
    if (prev < 0 !== x < 0 && (x < 0 ? this.armedPos : this.armedNeg)) {
      this.candidate = index - this.decimation + (this.decimation * prev) / (prev - x);
    }
    if (x < -this.zcHysteresisV) {
      if (this.armedPos && this.candidate !== null) this.crossing(this.candidate, false);
      this.armedPos = false;
      this.armedNeg = true;
    } else if (x > this.zcHysteresisV) {
      if (this.armedNeg && this.candidate !== null) this.crossing(this.candidate, true);
      this.armedNeg = false;
      this.armedPos = true;
    }
    // No crossing for 1.5 half periods: keep the half-cycle clock going.
    let last = this.boundaries.at(-1);
    while (last !== undefined && index - last > 0.75 * this.period) {
      this.boundary(last + this.period / 2);
      last = this.boundaries.at(-1)!;
    }
  }

  private crossing(t: number, rising: boolean): void {
    this.candidate = null;
    if (rising) this.onRising(t);
    const last = this.boundaries.at(-1);
    if (last === undefined || t - last >= this.period / 4) this.boundary(t);
  }

  private onRising(t: number): void {
    const previous = this.risings.at(-1);
    if (previous !== undefined) {
      const p = t - previous;
      // Locked (two crossings a cycle apart seen), the period moves by far less than 10 % a cycle: an
      // earlier crossing is no fundamental one (the decimator's filter rings after a step to zero and
      // crosses the hysteresis band once), a later one means cycles were lost (an interruption).
      const nominal = this.deviceRateHz / this.thresholds.nominalHz;
      const locked = this.risings.length > 1;
      if (p < (locked ? 0.9 * this.period : 0.8 * nominal)) return;
      if (p > (locked ? 1.1 * this.period : 1.25 * nominal)) {
        this.risings = [t];
        return;
      }
      this.countCycle(t, p);
    }
    // The period over several cycles: one cycle's crossing interval jitters by tenths of a percent with
    // interharmonics, enough to make the waveform differ from itself one "period" earlier.
    this.risings.push(t);
    if (this.risings.length > PERIOD_CYCLES + 1) this.risings.shift();
    if (this.risings.length > 1) this.period = (t - this.risings[0]!) / (this.risings.length - 1);
  }

  /** IEC 61000-4-30 §5.1: integral cycles in the 10 s interval over their cumulative duration. */
  private countCycle(end: number, duration: number): void {
    const k = Math.floor(end / this.interval);
    if (k !== this.freqInterval) {
      if (this.freqInterval >= 0) this.emitFrequency();
      this.freqInterval = k;
      this.freqCycles = 0;
      this.freqDuration = 0;
    }
    this.freqCycles++;
    this.freqDuration += duration;
  }

  private emitFrequency(): void {
    const hz = this.freqCycles > 0 ? (this.freqCycles * this.deviceRateHz) / this.freqDuration : null;
    this.frequencies.push({ start: this.freqInterval * this.interval, end: (this.freqInterval + 1) * this.interval, hz });
  }

  private boundary(t: number): void {
    this.boundaries.push(t);
    if (this.boundaries.length > 3) this.boundaries.shift();
    if (this.boundaries.length < 3) return;
    const start = this.boundaries[0]!;
    const urms = Math.sqrt(this.meanSquare(start, t));
    this.halfCycles.push({ start, end: t, urms });
    this.detect(start, t, urms);
  }

  /**
   * Mean of x² over [a, b): the samples' Σx² divided by the span in samples, not by their count (a cycle
   * holds a non-integer number of them; with a and b at zero crossings the sum is an accurate integral).
   */
  private meanSquare(a: number, b: number): number {
    const k0 = Math.max(0, Math.ceil((a - this.histFirst) / this.decimation));
    const k1 = Math.min(this.histLen, Math.ceil((b - this.histFirst) / this.decimation));
    let s = 0;
    for (let k = k0; k < k1; k++) s += this.hist[k]! * this.hist[k]!;
    return b > a ? (s * this.decimation) / (b - a) : 0;
  }

  private detect(start: number, end: number, u: number): void {
    for (const d of this.detectors) {
      if (d.open === null) {
        if (!d.begins(u)) continue;
        const edge = this.firstChange(end - 2 * this.period, end);
        d.open = { start: edge ?? start, extreme: u, located: edge !== null };
        continue;
      }
      d.open.extreme = d.kind === 'swell' ? Math.max(d.open.extreme, u) : Math.min(d.open.extreme, u);
      if (!d.ends(u)) continue;
      // After a step the waveform differs from the cycle before it for one period. An event shorter than
      // that shows as the difference going quiet within the period (both cycles compared are normal
      // again); a longer one as a second change when the voltage comes back.
      const edge =
        (d.open.located && end - d.open.start < 3 * this.period ? this.changeEndWithin(d.open.start, d.open.start + 0.95 * this.period) : null) ??
        this.firstChange(Math.max(d.open.start + 1.05 * this.period, end - 2 * this.period), end);
      this.events.push({ kind: d.kind, start: d.open.start, end: edge ?? end, extremeV: d.open.extreme, cutByGap: false });
      d.open = null;
    }
  }

  /** Index of the first sample in [a, b] that differs from the waveform one period earlier, or null. */
  private firstChange(a: number, b: number): number | null {
    const D = this.decimation;
    const k0 = Math.max(0, Math.ceil((a - this.histFirst) / D));
    const k1 = Math.min(this.histLen - 1, Math.floor((b - this.histFirst) / D));
    for (let k = k0; k <= k1; k++) if (this.differs(k)) return this.histFirst + k * D;
    return null;
  }

  /**
   * Where the waveform, differing from one period earlier from `a` on, stops differing for a quarter
   * period before `b` (the last differing sample + 1), or null. Zero crossings of a dipped wave pause the
   * difference for a few hundredths of a period only.
   */
  private changeEndWithin(a: number, b: number): number | null {
    const D = this.decimation;
    const quiet = this.period / 4;
    const k0 = Math.ceil((a - this.histFirst) / D);
    if (k0 < 0) return null;
    const k1 = Math.min(this.histLen - 1, Math.floor((b - this.histFirst) / D));
    let lastChange = this.histFirst + k0 * D;
    for (let k = k0; k <= k1; k++) {
      const index = this.histFirst + k * D;
      if (this.differs(k)) lastChange = index;
      else if (index - lastChange >= quiet) return lastChange + D;
    }
    return null;
  }

  private differs(k: number): boolean {
    const lag = this.period / this.decimation;
    const u = k - lag;
    const j = Math.floor(u);
    if (j < 0) return false;
    const earlier = this.hist[j]! + (u - j) * (this.hist[j + 1]! - this.hist[j]!);
    return Math.abs(this.hist[k]! - earlier) > this.edgeThresholdV;
  }

  private trimHistory(): void {
    const keep = Math.ceil((HISTORY_CYCLES * this.period) / this.decimation);
    const drop = this.histLen - keep;
    if (drop < keep) return;
    this.hist.copyWithin(0, drop, this.histLen);
    this.histLen = keep;
    this.histFirst += drop * this.decimation;
  }
}
