// The history query's folding: the rows of one source level (windows or a rollup level) into at most `points`
// equal buckets with a sample-weighted mean, min, max, exact energy and coverage each. query.ts reads the rows;
// this file decides the buckets and folds them.

import { Bucket, emptyFoldRow, foldQuantity, type FoldRow } from './fold.ts';
import { PACK_ENERGY, PACK_SAMPLES, PACK_STATS, PACK_STRIDE, PACK_T, recordInto, type RollupBlock } from './pack.ts';
import { ROLLUP_LEVELS, type Quantity, type RollupLevelName } from './schema.ts';

export interface HistoryRequest {
  device: string;
  fromMs: number;
  toMs: number;
  /** At most this many buckets come back. */
  points: number;
  fields: readonly Quantity[];
}

export interface HistorySeries {
  mean: (number | null)[];
  min: (number | null)[];
  max: (number | null)[];
}

export interface HistoryAnswer {
  /** 'raw' (windows) or a rollup level name. */
  level: string;
  bucketMs: number;
  /** Bucket starts; a bucket without data is null in every series (a gap). */
  t: number[];
  series: Partial<Record<Quantity, HistorySeries>>;
  /** Exact energy per bucket, nWh. */
  energyNwh: bigint[];
  /** Samples covered / nominal samples of the bucket (0 for a gap). */
  coverage: number[];
}

/** What the fold reads from the store, for one device. */
export interface HistorySource {
  /** Windows whose end lies in (fromMs, toMs], oldest first. */
  windows(fromMs: number, toMs: number): Iterable<FoldRow>;
  /** The most samples any window ending in (fromMs, toMs] holds (0 when there is none). */
  longestWindowSamples(fromMs: number, toMs: number): number;
  /** Rollup records of a level starting in [fromMs, toMs), oldest first. */
  blocks(levelMs: number, fromMs: number, toMs: number): Iterable<RollupBlock>;
}

/** Choose the source level for `points` buckets over a span: the coarsest with at least `points` rows. */
export function chooseLevel(spanMs: number, points: number): { level: 'raw' | RollupLevelName; levelMs: number } {
  const wanted = spanMs / points;
  let choice: { level: 'raw' | RollupLevelName; levelMs: number } = { level: 'raw', levelMs: 1 };
  for (const l of ROLLUP_LEVELS) if (l.ms <= wanted) choice = { level: l.name, levelMs: l.ms };
  return choice;
}

/**
 * The history of `req` from `src`, with `fieldIndices` the QUANTITIES index of each requested field. At the raw
 * level a bucket is never shorter than the longest window in the range: a window is one point in time (its
 * end), so buckets finer than the windows would leave most of them empty and show continuous data as gaps.
 * Consecutive window ends are at most one window apart, so such buckets each hold one, and a null bucket is a
 * real gap.
 */
export function foldHistory(src: HistorySource, fs: number, req: HistoryRequest, fieldIndices: readonly number[]): HistoryAnswer {
  const { fromMs, toMs, points } = req;
  const { level, levelMs } = chooseLevel(toMs - fromMs, points);
  const t0 = Math.floor(fromMs / levelMs) * levelMs;
  let bucketMs = Math.ceil((toMs - t0) / points / levelMs) * levelMs;
  if (level === 'raw') bucketMs = Math.max(bucketMs, Math.ceil((src.longestWindowSamples(fromMs, toMs) * 1000) / fs));
  const count = Math.ceil((toMs - t0) / bucketMs);
  const shape = { t0, bucketMs, count, fs };
  if (level !== 'raw') {
    const folded = foldRollupsFast(src.blocks(levelMs, t0, toMs), shape, req.fields, fieldIndices);
    if (folded) return { level, ...folded };
  }
  const buckets: (Bucket | undefined)[] = new Array(count);
  const place = (r: FoldRow, tKey: number): void => {
    const k = Math.floor((tKey - t0) / bucketMs);
    if (k < 0 || k >= count) return;
    (buckets[k] ??= new Bucket()).add(r);
  };
  if (level === 'raw') {
    // A window belongs to the instant before its end, as in the rollups. The last bucket is whole, also past
    // `toMs`: one cut shorter than a window would often hold no window end and read as a gap.
    for (const row of src.windows(fromMs, t0 + count * bucketMs)) place(row, row.tMs - 1);
  } else {
    const scratch = emptyFoldRow();
    for (const block of src.blocks(levelMs, t0, toMs)) {
      for (let r = block.begin; r < block.end; r++) place(recordInto(block, r, scratch), scratch.tMs);
    }
  }
  const t: number[] = new Array(count);
  const series: Partial<Record<Quantity, HistorySeries>> = {};
  for (const f of req.fields) series[f] = { mean: new Array(count), min: new Array(count), max: new Array(count) };
  const energyNwh: bigint[] = new Array(count);
  const coverage: number[] = new Array(count);
  const nominalSamples = (bucketMs / 1000) * fs;
  for (let b = 0; b < count; b++) {
    t[b] = t0 + b * bucketMs;
    const bucket = buckets[b];
    energyNwh[b] = bucket?.energyNwh ?? 0n;
    coverage[b] = bucket ? bucket.samples / nominalSamples : 0;
    req.fields.forEach((f, j) => {
      const k = fieldIndices[j]!;
      const s = series[f]!;
      s.mean[b] = bucket ? bucket.mean(k) : null;
      s.min[b] = bucket ? bucket.minOf(k) : null;
      s.max[b] = bucket ? bucket.maxOf(k) : null;
    });
  }
  return { level, bucketMs, t, series, energyNwh, coverage };
}

/**
 * foldHistory over rollup rows, folded straight into typed arrays: per bucket and requested field the weighted
 * sum, weight, min and max, in the order and with the comparisons of Bucket.add, so the answer is the same
 * number for number. Undefined (the caller takes the general path) if a bucket's energy sum leaves the
 * safe-integer range, where it must be summed as a bigint.
 */
function foldRollupsFast(
  blocks: Iterable<RollupBlock>,
  shape: { t0: number; bucketMs: number; count: number; fs: number },
  names: readonly Quantity[],
  fields: readonly number[],
): Omit<HistoryAnswer, 'level'> | undefined {
  const { t0, bucketMs, count, fs } = shape;
  const F = fields.length;
  const rows = new Uint32Array(count);
  const samples = new Float64Array(count);
  const energy = new Float64Array(count);
  const wsum = new Float64Array(count * F);
  const weight = new Float64Array(count * F);
  const min = new Float64Array(count * F).fill(NaN);
  const max = new Float64Array(count * F).fill(NaN);
  const acc = { wsum, weight, min, max };
  for (const block of blocks) {
    if (block.bigEnergy) return undefined;
    const d = block.data;
    for (let r = block.begin; r < block.end; r++) {
      const o = r * PACK_STRIDE;
      const b = Math.floor((d[o + PACK_T]! - t0) / bucketMs);
      if (b < 0 || b >= count) continue;
      const e = energy[b]! + d[o + PACK_ENERGY]!;
      if (!Number.isSafeInteger(e)) return undefined;
      energy[b] = e;
      rows[b]!++;
      samples[b]! += d[o + PACK_SAMPLES]!;
      for (let j = 0; j < F; j++) {
        const so = o + PACK_STATS + 4 * fields[j]!;
        foldQuantity(acc, b * F + j, d[so]!, d[so + 1]!, d[so + 2]!, d[so + 3]!);
      }
    }
  }
  const t: number[] = new Array(count);
  const energyNwh: bigint[] = new Array(count);
  const coverage: number[] = new Array(count);
  const nominalSamples = (bucketMs / 1000) * fs;
  const out = fields.map(() => ({ mean: new Array<number | null>(count), min: new Array<number | null>(count), max: new Array<number | null>(count) }));
  for (let b = 0; b < count; b++) {
    t[b] = t0 + b * bucketMs;
    const present = rows[b]! > 0;
    energyNwh[b] = BigInt(energy[b]!);
    coverage[b] = present ? samples[b]! / nominalSamples : 0;
    for (let j = 0; j < F; j++) {
      const at = b * F + j;
      const defined = present && weight[at]! > 0;
      const s = out[j]!;
      s.mean[b] = defined ? wsum[at]! / weight[at]! : null;
      s.min[b] = defined ? min[at]! : null;
      s.max[b] = defined ? max[at]! : null;
    }
  }
  const series: Partial<Record<Quantity, HistorySeries>> = {};
  names.forEach((f, j) => {
    series[f] = out[j]!;
  });
  return { bucketMs, t, series, energyNwh, coverage };
}
