// Shared by the protocol and device tests: a seeded PRNG (so every failure reproduces) and frames
// filled with extreme or random values, built from the definition so new fields are covered too.

import type { FrameFields, TailRecordInput } from '../../server/protocol/codec.ts';
import type { FrameName, ScalarType } from '../../server/protocol/definition.ts';
import { LAYOUTS, layoutOf, scalarRange, type FieldLayout } from '../../server/protocol/layout.ts';

export type Rng = () => number;

/** mulberry32: tiny, fast, good enough to drive tests; uniform in [0, 1). */
export function seededRng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

export const randomInt = (rng: Rng, lo: number, hiInclusive: number): number =>
  lo + Math.floor(rng() * (hiInclusive - lo + 1));

export function randomBytes(rng: Rng, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let k = 0; k < length; k++) out[k] = Math.floor(rng() * 256);
  return out;
}

export type Fill = 'min' | 'max' | 'zero' | 'random';

const WIDE = new Set<ScalarType>(['u64', 'i64', 'i128']);

export function scalarValue(type: ScalarType, fill: Fill, rng: Rng): number | bigint {
  const { min, max } = scalarRange(type);
  let v: bigint;
  if (fill === 'min') v = min;
  else if (fill === 'max') v = max;
  else if (fill === 'zero') v = 0n;
  else {
    // Random bits across the full width, so high bytes and sign bits are exercised.
    const bits = BigInt((max - min).toString(2).length);
    let r = 0n;
    for (let b = 0n; b < bits; b += 16n) r = (r << 16n) | BigInt(Math.floor(rng() * 65536));
    v = min + (r % (max - min + 1n));
  }
  return WIDE.has(type) ? v : Number(v);
}

function record(fields: readonly FieldLayout[], fill: Fill, rng: Rng): Record<string, number | bigint> {
  const out: Record<string, number | bigint> = {};
  for (const field of fields) out[field.name] = scalarValue(field.type, fill, rng);
  return out;
}

export interface FrameSpec<N extends FrameName = FrameName> {
  name: N;
  seq: number;
  fields: FrameFields<N>;
  pairs: TailRecordInput[] | undefined;
}

export function makeFrame<N extends FrameName>(name: N, seq: number, fill: Fill, rng: Rng, tailCount?: number): FrameSpec<N> {
  const layout = layoutOf(name);
  const fields = record(layout.fields, fill, rng) as FrameFields<N>;
  let pairs: TailRecordInput[] | undefined;
  if (layout.tail) {
    const count = tailCount ?? (fill === 'random' ? randomInt(rng, 0, layout.tail.maxCount) : layout.tail.maxCount);
    pairs = Array.from({ length: count }, () => record(layout.tail!.fields, fill, rng));
  }
  return { name, seq, fields, pairs };
}

export const FRAME_NAMES = [...LAYOUTS.keys()];

export function randomFrame(rng: Rng, seq: number): FrameSpec {
  const name = FRAME_NAMES[randomInt(rng, 0, FRAME_NAMES.length - 1)]!;
  return makeFrame(name, seq, 'random', rng);
}
