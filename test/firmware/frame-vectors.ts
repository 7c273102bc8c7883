// Frame vectors shared by the TypeScript codec and the firmware's C framing code: every frame type
// with extreme and random field values, encoded by server/protocol/codec.ts. The firmware's native
// tests (firmware/test/test_vectors.c) build the device frames from these fields and must produce
// the same bytes, and decode the commands to the same fields; test/firmware/frames.test.ts checks
// that the committed file is what this generator writes.
//
//   node --import tsx test/firmware/frame-vectors.ts      rewrites test/vectors/frames/frames.json
//
// Format (one case per line, so the C test can read it without a JSON library): every integer is a
// decimal string, pairs are [v, i] arrays, hex is the wire bytes including the 0x00 delimiter.

import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { encodeFrame, encodeFrameBytes } from '../../server/protocol/codec.ts';
import { cobsEncode } from '../../server/protocol/cobs.ts';
import { crc32c } from '../../server/protocol/crc32c.ts';
import { PROTOCOL_VERSION, type FrameName } from '../../server/protocol/definition.ts';
import { FRAME_NAMES, makeFrame, seededRng, type Fill, type FrameSpec } from '../protocol/fixtures.ts';

export const VECTORS_PATH = fileURLToPath(new URL('../vectors/frames/frames.json', import.meta.url));

export interface InvalidVector {
  error: 'cobs' | 'short' | 'crc' | 'version';
  hex: string;
  why: string;
}

const SEQS = [0, 1, 0x7fffffff, 0xffffffff];

function specs(): FrameSpec[] {
  const rng = seededRng(0xc0ffee);
  const out: FrameSpec[] = [];
  let k = 0;
  for (const name of FRAME_NAMES) {
    for (const fill of ['zero', 'min', 'max', 'random', 'random'] as Fill[]) {
      out.push(makeFrame(name, SEQS[k++ % SEQS.length]!, fill, rng));
    }
  }
  // Capture chunks at the tail's edges, and one whose payload is long runs of non-zero bytes, so the
  // COBS encoders must agree on full 254-byte runs.
  for (const count of [0, 1, 255, 256]) out.push(makeFrame<FrameName>('capture_chunk', 1000 + count, 'random', rng, count));
  const dense = makeFrame<FrameName>('capture_chunk', 77, 'max', rng, 256);
  dense.pairs = dense.pairs!.map((_, n) => ({ v: 0x1111 + n, i: -0x1111 - n }));
  out.push(dense);
  return out;
}

const hexOf = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

function wire(raw: Uint8Array): string {
  return hexOf(Buffer.concat([cobsEncode(raw), Buffer.from([0])]));
}

function invalid(): InvalidVector[] {
  const good = encodeFrameBytes('cmd_status', 5, {});
  const badCrc = Uint8Array.from(good);
  badCrc[badCrc.length - 1]! ^= 0x01;
  const otherVersion = Uint8Array.from(good);
  otherVersion[0] = PROTOCOL_VERSION + 1;
  new DataView(otherVersion.buffer).setUint32(otherVersion.length - 4, crc32c(otherVersion.subarray(0, -4)), true);
  return [
    { error: 'crc', hex: wire(badCrc), why: 'cmd_status with one CRC bit flipped' },
    { error: 'version', hex: wire(otherVersion), why: `intact cmd_status of protocol version ${PROTOCOL_VERSION + 1}` },
    { error: 'short', hex: wire(good.subarray(0, 9)), why: 'nine bytes: less than header and CRC' },
    { error: 'cobs', hex: '0511223300', why: 'code byte runs past the end of the chunk' },
    { error: 'cobs', hex: '0311000200', why: 'zero inside a chunk' },
  ];
}

function field(value: number | bigint): string {
  return value.toString();
}

export function frameVectorsJson(): string {
  const lines = specs().map((s) => {
    const fields = Object.fromEntries(Object.entries(s.fields).map(([k, v]) => [k, field(v as number | bigint)]));
    const pairs = (s.pairs ?? []).map((p) => [Number(p.v), Number(p.i)]);
    const hex = hexOf(encodeFrame(s.name, s.seq, s.fields as never, s.pairs));
    return JSON.stringify({ name: s.name, seq: String(s.seq), fields, pairs, hex });
  });
  const bad = invalid().map((v) => JSON.stringify(v));
  return (
    '{"generator":"test/firmware/frame-vectors.ts",\n"cases":[\n' +
    lines.join(',\n') +
    '\n],\n"invalid":[\n' +
    bad.join(',\n') +
    '\n]}\n'
  );
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(VECTORS_PATH, frameVectorsJson());
  console.log(`wrote ${VECTORS_PATH}`);
}
