// The simulated device's decimated waveform: the calibrated pairs of every block through the bit-exact
// decimator (server/dsp/decimator.ts), cut into `waveform` frames of WAVEFORM_FRAME_SAMPLES stream
// samples as the firmware does (firmware/src/waveform.c). Cost: the decimator's ~5 multiply-adds per
// sample and channel.

import { DECIMATION, Decimator } from '../dsp/decimator.ts';

/** Stream samples per waveform frame, as firmware/src/waveform.c sends them (4.1 ms of signal). */
export const WAVEFORM_FRAME_SAMPLES = 32;

export interface WaveformFrameOut {
  first_index: bigint;
  pairs: { v: number; i: number }[];
}

export class WaveformFramer {
  private readonly decimator = new Decimator();
  private pending: { v: number; i: number }[] = [];
  private pendingFirst = 0n;

  /** Calibrated pairs (q) of the next `count` samples in; the frames they complete out, oldest first. */
  push(v: Int32Array, i: Int32Array, count: number): WaveformFrameOut[] {
    const block = this.decimator.push(v, i, count);
    const frames: WaveformFrameOut[] = [];
    for (let k = 0; k < block.v.length; k++) {
      if (this.pending.length === 0) this.pendingFirst = block.firstIndex + BigInt(k * DECIMATION);
      this.pending.push({ v: block.v[k]!, i: block.i[k]! });
      if (this.pending.length === WAVEFORM_FRAME_SAMPLES) {
        frames.push({ first_index: this.pendingFirst, pairs: this.pending });
        this.pending = [];
      }
    }
    return frames;
  }
}
