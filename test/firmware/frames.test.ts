// The firmware's framing against the TypeScript codec, both ways:
//  - test/vectors/frames/frames.json (written by frame-vectors.ts from codec.ts) is current, and every
//    vector decodes to its fields; firmware/test/test_vectors.c checks the C side against the same file;
//  - the firmware's application code, run natively on a scripted fake of the hardware
//    (firmware/test/dump/frame_dump.c), emits a byte stream that FrameDecoder reads without one error,
//    with the values the scenario put in and the seq gaps the firmware reports as dropped.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { beforeAll, describe, expect, it } from 'vitest';

import { FrameDecoder, decodePayload, type Frame } from '../../server/protocol/codec.ts';
import { ACK_STATUS, CALIBRATION_SOURCE, FRAMES, PROTOCOL_VERSION, WINDOW_FLAG } from '../../server/protocol/definition.ts';
import { VECTORS_PATH, frameVectorsJson } from './frame-vectors.ts';

const FIRMWARE_DIR = fileURLToPath(new URL('../../firmware/', import.meta.url));

interface VectorCase {
  name: string;
  seq: string;
  fields: Record<string, string>;
  pairs: [number, number][];
  hex: string;
}

describe('frame vectors', () => {
  const file = readFileSync(VECTORS_PATH, 'utf8');
  const vectors = JSON.parse(file) as { cases: VectorCase[]; invalid: { error: string; hex: string }[] };

  it('are what frame-vectors.ts generates (regenerate with: node --import tsx test/firmware/frame-vectors.ts)', () => {
    expect(file).toBe(frameVectorsJson());
  });

  it('cover every frame type', () => {
    expect(new Set(vectors.cases.map((c) => c.name))).toEqual(new Set(FRAMES.map((f) => f.name)));
  });

  it('decode to their fields with the TypeScript decoder', () => {
    for (const c of vectors.cases) {
      const bytes = Buffer.from(c.hex, 'hex');
      expect(bytes.at(-1)).toBe(0);
      const result = decodePayload(bytes.subarray(0, -1));
      if (!result.ok) throw new Error(`${c.name} seq ${c.seq}: ${result.error} ${result.detail}`);
      const frame = result.frame;
      expect(frame.name).toBe(c.name);
      expect(String(frame.seq)).toBe(c.seq);
      const fields = Object.fromEntries(Object.entries(frame.fields).map(([k, v]) => [k, String(v)]));
      expect(fields).toEqual(c.fields);
      const pairs = 'pairs' in frame ? frame.pairs.map((p) => [p.v, p.i]) : [];
      expect(pairs).toEqual(c.pairs);
    }
  });

  it('reject damaged chunks for the reason the C decoder gives', () => {
    for (const v of vectors.invalid) {
      const result = decodePayload(Buffer.from(v.hex, 'hex').subarray(0, -1));
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.error).toBe(v.error);
    }
  });
});

describe('firmware byte stream (native build of firmware/src on a fake of the hardware)', () => {
  let frames: Frame[] = [];
  let decoder: FrameDecoder;

  beforeAll(() => {
    execFileSync('make', ['-s', '-C', FIRMWARE_DIR, 'build/native/frame_dump'], { stdio: 'inherit' });
    const bytes = execFileSync(`${FIRMWARE_DIR}build/native/frame_dump`, { maxBuffer: 1 << 24 });
    decoder = new FrameDecoder();
    // Small pieces, as a serial port delivers them.
    for (let at = 0; at < bytes.length; at += 61) frames.push(...decoder.push(bytes.subarray(at, at + 61)));
  });

  const named = <N extends Frame['name']>(name: N): Extract<Frame, { name: N }>[] =>
    frames.filter((f): f is Extract<Frame, { name: N }> => f.name === name);

  it('decodes without a single error', () => {
    expect(decoder.counters.crcErrors).toBe(0);
    expect(decoder.counters.framingErrors).toBe(0);
    expect(decoder.counters.protocolErrors).toBe(0);
    expect(decoder.counters.oversize).toBe(0);
    expect(frames.length).toBeGreaterThan(20);
  });

  it('starts with identify and status of the boot', () => {
    const [identify, status] = frames;
    expect(identify?.name).toBe('identify');
    expect(identify?.seq).toBe(0);
    if (identify?.name !== 'identify') return;
    expect(identify.fields.device_id).toBe(0xd5e3a1b2c3d4e5f6n); // the fake flash's unique ID (firmware/test/hal_fake.h)
    expect(identify.fields.calibration_source).toBe(CALIBRATION_SOURCE.DEFAULTS);
    expect(identify.fields.boot_id).toBe(0x600db007);
    expect(identify.fields.protocol_version).toBe(PROTOCOL_VERSION);
    expect(identify.fields.sample_rate_num).toBe(4_000_000);
    expect(status?.name).toBe('status');
    expect(status?.seq).toBe(1);
  });

  it('acknowledges every command with its seq, after the answer', () => {
    const acks = named('ack').map((a) => [a.fields.command_seq, a.fields.status, a.fields.value]);
    expect(acks).toEqual([
      [100, ACK_STATUS.OK, 0],
      [101, ACK_STATUS.OK, 1],
      [102, ACK_STATUS.BAD_ARGS, 0],
      [103, ACK_STATUS.OK, 1],
    ]);
    const ackAt = frames.findIndex((f) => f.name === 'ack');
    expect(frames[ackAt - 1]?.name).toBe('identify');
  });

  it('carries the window sums exactly, negative and 64-bit ones included', () => {
    const windows = named('window');
    for (const [k, w] of windows.slice(0, 3).entries()) {
      expect(w.fields.end_index).toBe(4000n * BigInt(k + 1));
      expect(w.fields.samples).toBe(4000);
      expect(w.fields.sum_v).toBe(-1000n * BigInt(k) - 7n);
      expect(w.fields.sum_vv).toBe(0x0020000000000000n + BigInt(k));
      expect(w.fields.sum_vi).toBe(BigInt(k - 1) * 1_000_000_000_000n - 3n);
      expect([w.fields.min_v, w.fields.max_v]).toEqual([-100 - k, 100 + k]);
      expect([w.fields.zc_count, w.fields.zc_first_offset, w.fields.zc_first_prev, w.fields.zc_first_cur]).toEqual([2, 10, -3, 4]);
      expect([w.fields.zc_last_offset, w.fields.zc_last_prev, w.fields.zc_last_cur]).toEqual([2010, -2, 5]);
      expect(w.fields.flags).toBe(WINDOW_FLAG.CONFIG);
      expect(w.fields.config_seq).toBe(1);
    }
  });

  it('sends an energy snapshot with every window, equal to the running sum of sum_vi', () => {
    let sum = 0n;
    let checked = 0;
    for (const [k, f] of frames.entries()) {
      if (f.name !== 'window') continue;
      const next = frames[k + 1];
      // A window whose energy frame was dropped is followed by another window or a status.
      if (next?.name !== 'energy' || next.seq !== f.seq + 1) continue;
      // Windows end every 4000 samples, so end_index names the window: the scenario's running sum up to it.
      const n = Number(f.fields.end_index / 4000n);
      sum = 0n;
      for (let j = 0; j < n; j++) sum += BigInt(j - 1) * 1_000_000_000_000n - 3n;
      expect(next.fields.end_index).toBe(f.fields.end_index);
      expect(next.fields.energy).toBe(sum);
      expect(next.fields.boot_id).toBe(0x600db007);
      checked++;
    }
    expect(checked).toBeGreaterThan(40);
  });

  it('reports as dropped exactly the frames missing from the sequence', () => {
    const statuses = named('status');
    const last = statuses.at(-1)!;
    expect(last.fields.frames_dropped).toBeGreaterThan(0);
    expect(decoder.counters.seqGaps).toBe(last.fields.frames_dropped);
    // Seq numbers only grow: nothing is sent twice or out of order.
    for (let k = 1; k < frames.length; k++) expect(frames[k]!.seq).toBeGreaterThan(frames[k - 1]!.seq);
  });

  it('delivers the capture whole, in order', () => {
    const chunks = named('capture_chunk');
    expect(chunks.map((c) => c.fields.chunk_index)).toEqual([0, 1]);
    const pairs = chunks.flatMap((c) => c.pairs);
    expect(pairs.length).toBe(300);
    pairs.forEach((p, n) => expect([p.v, p.i]).toEqual([3 * n - 5000, 0 - n]));
    // Decimation 4: pair k is sample first_index + 4k, in every chunk.
    expect(chunks.map((c) => c.fields.first_index)).toEqual([5_000_000n, 5_000_000n + 4n * 256n]);
    expect(chunks.map((c) => c.fields.decimation)).toEqual([4, 4]);
    expect(chunks.every((c) => c.fields.capture_id === 1 && c.fields.chunk_count === 2)).toBe(true);
  });
});
