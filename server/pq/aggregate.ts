// IEC 61000-4-30 §4.5 aggregation of the 10/12-cycle values: 150/180-cycle blocks (15 consecutive
// windows) and 10-minute intervals, each flagged when a dip, swell or interruption touched it (§4.7).
//
// Magnitudes aggregate as the root of the mean square (the standard's rule); harmonic powers as the
// mean; THD is recomputed from the aggregated subgroups. A 150/180-cycle block restarts at a
// discontinuity (a gap, a window left out) and at every 10-minute boundary, as the standard
// resynchronises it; an incomplete block gives no value. 10-minute intervals are aligned to multiples of
// ten minutes of the device sample index and carry the number of windows they hold.

import { MAX_ORDER, THD_ORDER, thd } from './iec61000-4-7.ts';

/** The per-window values that are aggregated. */
export interface PqWindowValues {
  /** device sample indices [start, end) */
  start: number;
  end: number;
  vrms: number;
  irms: number;
  h_v: number[];
  h_i: number[];
  p_h: number[];
}

export type AggregateKind = 'cycles' | '10min';

export interface PqAggregate {
  kind: AggregateKind;
  start: number;
  end: number;
  windows: number;
  vrms: number;
  irms: number;
  h_v: number[];
  h_i: number[];
  p_h: number[];
  thd_v: number | null;
  thd_i: number | null;
  /** an event touched the interval (IEC 61000-4-30 flag) */
  flagged: boolean;
}

/** What the aggregation asks of the event detector (VoltageMonitor). */
export interface EventSource {
  eventDuring(start: number, end: number): boolean;
  settledAfter(index: number): boolean;
}

export const WINDOWS_PER_BLOCK = 15;
export const INTERVAL_S = 600;

class Sum {
  windows = 0;
  start = 0;
  end = 0;
  private vv = 0;
  private ii = 0;
  private readonly hv = new Float64Array(MAX_ORDER);
  private readonly hi = new Float64Array(MAX_ORDER);
  private readonly p = new Float64Array(MAX_ORDER);

  add(w: PqWindowValues): void {
    if (this.windows === 0) this.start = w.start;
    this.end = w.end;
    this.windows++;
    this.vv += w.vrms * w.vrms;
    this.ii += w.irms * w.irms;
    for (let h = 0; h < MAX_ORDER; h++) {
      this.hv[h]! += w.h_v[h]! * w.h_v[h]!;
      this.hi[h]! += w.h_i[h]! * w.h_i[h]!;
      this.p[h]! += w.p_h[h]!;
    }
  }

  result(kind: AggregateKind): PqAggregate {
    const n = this.windows;
    const h_v = Array.from(this.hv, (x) => Math.sqrt(x / n));
    const h_i = Array.from(this.hi, (x) => Math.sqrt(x / n));
    return {
      kind,
      start: this.start,
      end: this.end,
      windows: n,
      vrms: Math.sqrt(this.vv / n),
      irms: Math.sqrt(this.ii / n),
      h_v,
      h_i,
      p_h: Array.from(this.p, (x) => x / n),
      thd_v: thd(h_v, THD_ORDER),
      thd_i: thd(h_i, THD_ORDER),
      flagged: false,
    };
  }
}

export class Aggregator {
  private block = new Sum();
  private interval = new Sum();
  private intervalNo = -1;
  private readonly intervalSamples: number;
  /** complete aggregates waiting for the event detector to be past them */
  private readonly waiting: PqAggregate[] = [];

  constructor(deviceRateHz: number, private readonly windowsPerBlock = WINDOWS_PER_BLOCK) {
    this.intervalSamples = INTERVAL_S * deviceRateHz;
  }

  add(w: PqWindowValues): void {
    const no = Math.floor(w.start / this.intervalSamples);
    if (no !== this.intervalNo) {
      if (this.interval.windows > 0) this.waiting.push(this.interval.result('10min'));
      this.interval = new Sum();
      this.intervalNo = no;
      this.block = new Sum();
    }
    if (this.block.windows > 0 && this.block.end !== w.start) this.block = new Sum();
    this.interval.add(w);
    this.block.add(w);
    if (this.block.windows === this.windowsPerBlock) {
      this.waiting.push(this.block.result('cycles'));
      this.block = new Sum();
    }
  }

  /**
   * The aggregates whose flag is known, in order, flagged. `final` (end of the stream) also closes the
   * open 10-minute interval and takes the detector as settled.
   */
  drain(events: EventSource, final = false): PqAggregate[] {
    if (final && this.interval.windows > 0) {
      this.waiting.push(this.interval.result('10min'));
      this.interval = new Sum();
      this.block = new Sum();
      this.intervalNo = -1;
    }
    const out: PqAggregate[] = [];
    while (this.waiting.length > 0 && (final || events.settledAfter(this.waiting[0]!.end))) {
      const a = this.waiting.shift()!;
      a.flagged = events.eventDuring(a.start, a.end);
      out.push(a);
    }
    return out;
  }
}
