import { describe, expect, it } from 'vitest';
import { decodePayload, encodeFrame, type Frame } from '../../server/protocol/codec.ts';
import { WaveformGaps, WaveformStreamError, waveformBlock } from '../../server/protocol/waveform.ts';

function frame(seq: number, firstIndex: bigint, pairs: { v: number; i: number }[]): Frame<'waveform'> {
  const bytes = encodeFrame('waveform', seq, { first_index: firstIndex }, pairs);
  const decoded = decodePayload(bytes.subarray(0, bytes.length - 1));
  if (!decoded.ok) throw new Error(decoded.detail);
  return decoded.frame as Frame<'waveform'>;
}

describe('waveform frames', () => {
  it('decode to a block with the 19-bit extremes intact', () => {
    const b = waveformBlock(frame(7, 322n, [{ v: -262144, i: 262143 }, { v: 5, i: -6 }]));
    expect(b).toEqual({ seq: 7, firstIndex: 322n, v: Int32Array.from([-262144, 5]), i: Int32Array.from([262143, -6]) });
  });

  it('count the stream samples lost between blocks', () => {
    const gaps = new WaveformGaps();
    const two = [{ v: 1, i: 2 }, { v: 3, i: 4 }];
    expect(gaps.push(waveformBlock(frame(0, 322n, two)))).toBe(0n);
    expect(gaps.push(waveformBlock(frame(1, 322n + 2n * 512n, two)))).toBe(0n);
    expect(gaps.push(waveformBlock(frame(2, 322n + 9n * 512n, two)))).toBe(5n);
    expect(gaps.lostSamples).toBe(5n);
    expect(() => gaps.push(waveformBlock(frame(3, 322n, two)))).toThrow(WaveformStreamError);
    expect(() => gaps.push(waveformBlock(frame(3, 322n + 11n * 512n + 1n, two)))).toThrow(/512-sample grid/);
  });
});
