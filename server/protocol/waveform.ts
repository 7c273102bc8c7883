// The `waveform` frame as the host uses it: a block of the decimated stream (docs/dsp.md, Decimated
// waveform) with typed arrays, and the count of stream samples lost between blocks (a jump in
// first_index; the device counts its own losses in status.waveform_drops, a dropped frame also shows
// as a seq gap in the decoder's counters).

import { DECIMATION } from '../dsp/decimator.ts';
import type { Frame } from './codec.ts';

export interface WaveformBlock {
  seq: number;
  /** The 4 Msps sample index the first sample represents (n_j = 322 + 512·j). */
  firstIndex: bigint;
  /** Decimated voltage and current, q. */
  v: Int32Array;
  i: Int32Array;
}

export function waveformBlock(frame: Frame<'waveform'>): WaveformBlock {
  const n = frame.pairs.length;
  const v = new Int32Array(n);
  const i = new Int32Array(n);
  for (let k = 0; k < n; k++) {
    v[k] = frame.pairs[k]!.v;
    i[k] = frame.pairs[k]!.i;
  }
  return { seq: frame.seq, firstIndex: frame.fields.first_index, v, i };
}

export class WaveformStreamError extends RangeError {}

/** Follows one device boot's stream; `lostSamples` sums the gaps between consecutive blocks. */
export class WaveformGaps {
  lostSamples = 0n;
  private next: bigint | null = null;

  /** Stream samples lost just before `block` (0n when it continues the previous one). */
  push(block: WaveformBlock): bigint {
    const step = BigInt(DECIMATION);
    let lost = 0n;
    if (this.next !== null) {
      const jump = block.firstIndex - this.next;
      if (jump < 0n || jump % step !== 0n) {
        throw new WaveformStreamError(
          `waveform block at index ${block.firstIndex} does not follow ${this.next} on the 512-sample grid: ` +
            'a new boot (reset the tracker) or a non-conforming device',
        );
      }
      lost = jump / step;
      this.lostSamples += lost;
    }
    this.next = block.firstIndex + step * BigInt(block.v.length);
    return lost;
  }
}
