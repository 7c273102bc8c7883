// Exact energy of any whole-second range from the rollups. Every level books a window (and a gap) in the bucket
// holding the millisecond before its end, and each level's buckets carry the exact nWh of what they hold, so
// a range tiled by buckets of mixed levels sums to the same nWh as its 1 s buckets would: the coarsest level
// that fits is used where it fits (a month is ~30 1 d rows, not 2.6 M seconds) and finer ones only at the edges.

import { ROLLUP_LEVELS } from './schema.ts';

/** Exact nWh of the buckets of one level starting in [fromMs, toMs) (both multiples of levelMs). */
export type LevelEnergy = (levelMs: number, fromMs: number, toMs: number) => bigint;

const LEVELS_FINE_TO_COARSE = ROLLUP_LEVELS.map((l) => l.ms);

/** The ledger's finest rollup is 1 s: a range's bounds are taken to the nearest whole second. */
export function toWholeSeconds(ms: number): number {
  return Math.round(ms / 1000) * 1000;
}

/** nWh booked in [fromMs, toMs); both bounds whole seconds (toWholeSeconds). */
export function rangeEnergy(fromMs: number, toMs: number, levelEnergy: LevelEnergy): bigint {
  if (fromMs % 1000 !== 0 || toMs % 1000 !== 0) throw new RangeError(`range bounds must be whole seconds, got ${fromMs} … ${toMs}`);
  return tile(LEVELS_FINE_TO_COARSE.length - 1, fromMs, toMs, levelEnergy);
}

function tile(level: number, fromMs: number, toMs: number, levelEnergy: LevelEnergy): bigint {
  if (toMs <= fromMs) return 0n;
  const ms = LEVELS_FINE_TO_COARSE[level]!;
  if (level === 0) return levelEnergy(ms, fromMs, toMs);
  const inner0 = Math.ceil(fromMs / ms) * ms;
  const inner1 = Math.floor(toMs / ms) * ms;
  if (inner1 <= inner0) return tile(level - 1, fromMs, toMs, levelEnergy);
  return tile(level - 1, fromMs, inner0, levelEnergy) + levelEnergy(ms, inner0, inner1) + tile(level - 1, inner1, toMs, levelEnergy);
}
