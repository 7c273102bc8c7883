// Decoder throughput, for `crabwatt bench` (the CLI owner wires it in). It measures; it asserts
// nothing. A stream of window frames, the frame the host sees most, is decoded the two ways the
// host can feed the decoder: raw 4 KiB reads (push) and DelimiterParser chunks (pushChunk).
//
// Exports (stable): benchDecoder(options?) → DecoderBenchResult, WINDOW_WIRE_BYTES.

import { cobsMaxEncodedBytes } from './cobs.ts';
import { encodeFrame, FrameDecoder, type FrameFields } from './codec.ts';
import { layoutOf } from './layout.ts';

/** Worst-case bytes of one window frame on the wire, delimiter included. */
export const WINDOW_WIRE_BYTES = cobsMaxEncodedBytes(layoutOf('window').maxFrameBytes) + 1;

export interface DecoderBenchResult {
  frames: number;
  wireBytesPerFrame: number;
  /** Raw stream in 4 KiB reads through FrameDecoder.push. */
  pushFramesPerSecond: number;
  /** One delimiter-stripped chunk per frame through FrameDecoder.pushChunk. */
  pushChunkFramesPerSecond: number;
  encodeFramesPerSecond: number;
}

/** A realistic window: 10 cycles of 50 Hz at 4 Msps, sums of full-scale-ish signals. */
const WINDOW: FrameFields<'window'> = {
  end_index: 4_000_000_000n, samples: 800_000, sum_v: -1_234_567n, sum_i: 7_654_321n,
  sum_vv: 80_000_000_000_000n, sum_ii: 20_000_000_000_000n, sum_vi: -35_000_000_000_000n,
  min_v: -11_500, max_v: 11_480, min_i: -6_100, max_i: 6_050, zc_count: 10,
  zc_first_offset: 0, zc_first_prev: -37, zc_first_cur: 12, zc_last_offset: 720_000,
  zc_last_prev: -22, zc_last_cur: 31, flags: 0, config_seq: 3,
};

export function benchDecoder(options: { frames?: number } = {}): DecoderBenchResult {
  const count = options.frames ?? 200_000;
  let t = performance.now();
  const frames: Buffer[] = [];
  for (let seq = 0; seq < count; seq++) frames.push(encodeFrame('window', seq, { ...WINDOW, end_index: WINDOW.end_index + BigInt(seq) }));
  const encodeMs = performance.now() - t;
  const stream = Buffer.concat(frames);

  const raw = new FrameDecoder();
  t = performance.now();
  for (let at = 0; at < stream.length; at += 4096) raw.push(stream.subarray(at, at + 4096));
  const pushMs = performance.now() - t;

  const chunked = new FrameDecoder();
  t = performance.now();
  for (const frame of frames) chunked.pushChunk(frame.subarray(0, -1));
  const chunkMs = performance.now() - t;

  if (raw.counters.frames !== count || chunked.counters.frames !== count) {
    throw new Error(`decoder bench lost frames: ${raw.counters.frames}, ${chunked.counters.frames} of ${count}`);
  }
  return {
    frames: count,
    wireBytesPerFrame: stream.length / count,
    pushFramesPerSecond: Math.round((count / pushMs) * 1000),
    pushChunkFramesPerSecond: Math.round((count / chunkMs) * 1000),
    encodeFramesPerSecond: Math.round((count / encodeMs) * 1000),
  };
}
