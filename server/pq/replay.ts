// `crabwatt replay --pq`: the recording's calibrated samples through the decimator model and the
// power-quality analysis, as JSON lines (issue 13 item 7) between the window lines.

import { CODE_MID, type WindowRecord } from '../dsp/model.ts';
import { Decimator } from '../dsp/decimator.ts';
import type { EventKind } from './iec61000-4-30.ts';
import { pqStreamConfig, type PqSettings } from './settings.ts';
import { PqStream, type PqOutput } from './stream.ts';

export { iecCycles } from './settings.ts';
export type PqReplayOptions = PqSettings;

/** One analysed 10/12-cycle window. */
export interface PqLine {
  type: 'pq';
  /** window start, seconds from the first sample */
  t_s: number;
  /** THDS, orders 2 … 40, ratio */
  thd_v: number | null;
  thd_i: number | null;
  /** subgroup RMS of orders 1 … 50 (index 0 = order 1), V and A */
  h_v: number[];
  h_i: number[];
  /** harmonic active power per order, W */
  p_h: number[];
}

export interface PqEventLine {
  type: 'event';
  kind: EventKind;
  start_s: number;
  duration_s: number;
  /** residual (dip, interruption) or maximum (swell) Urms(1/2), V */
  extreme_v: number;
}

export class PqReplay {
  private readonly decimator = new Decimator();
  private readonly stream: PqStream;
  private readonly v = new Int32Array(1 << 16);
  private readonly i = new Int32Array(1 << 16);
  private seq = 0;

  /** `rate` is the recording's sample rate; the decimator's response scales with it. */
  constructor(opts: PqReplayOptions, private readonly rate: number, kv: number, ki: number, cycles: number) {
    this.stream = new PqStream(pqStreamConfig(opts, rate, kv, ki, cycles));
  }

  /** Raw codes of the next `count` samples. The replay's calibration is the reset one: q = 4·(code − mid). */
  samples(cv: Uint16Array, ci: Uint16Array, count: number): void {
    for (let k = 0; k < count; k++) {
      this.v[k] = 4 * (cv[k]! - CODE_MID);
      this.i[k] = 4 * (ci[k]! - CODE_MID);
    }
    const block = this.decimator.push(this.v, this.i, count);
    if (block.v.length > 0) this.stream.pushWaveform({ seq: this.seq++, ...block });
  }

  /** A window the DSP closed over samples already given to samples(). */
  window(w: WindowRecord): void {
    this.stream.pushWindow(w);
  }

  /** The lines completed so far; `final` at the end of the recording. */
  lines(final = false): (PqLine | PqEventLine)[] {
    return this.toLines(this.stream.drain(final));
  }

  private toLines(out: PqOutput): (PqLine | PqEventLine)[] {
    const lines: (PqLine | PqEventLine)[] = [];
    for (const w of out.windows) {
      if (w.analysis === null) continue;
      const a = w.analysis;
      lines.push({ type: 'pq', t_s: w.start / this.rate, thd_v: a.thd_v, thd_i: a.thd_i, h_v: a.h_v, h_i: a.h_i, p_h: a.p_h });
    }
    for (const e of out.events) {
      lines.push({ type: 'event', kind: e.kind, start_s: e.start / this.rate, duration_s: (e.end - e.start) / this.rate, extreme_v: e.extremeV });
    }
    return lines;
  }
}
