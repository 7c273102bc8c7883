// Folding rows (windows or rollup buckets) into wider buckets: sample-weighted means, min of mins, max of
// maxes, exact integer energy. One implementation serves the history query and the CSV export.

import { QUANTITIES } from './schema.ts';

const Q = QUANTITIES.length;

/**
 * A source row in the common shape. For a window, wsum = value·samples, weight = samples (0 when the value is
 * null) and min = max = value; for a rollup row they are its stored columns.
 */
export interface FoldRow {
  tMs: number;
  samples: number;
  windows: number;
  energyNwh: bigint;
  flags: number;
  wsum: Float64Array;
  weight: Float64Array;
  min: Float64Array;
  max: Float64Array;
}

export class Bucket {
  samples = 0;
  windows = 0;
  energyNwh = 0n;
  flags = 0;
  rows = 0;
  readonly wsum = new Float64Array(Q);
  readonly weight = new Float64Array(Q);
  readonly min = new Float64Array(Q).fill(NaN);
  readonly max = new Float64Array(Q).fill(NaN);

  reset(): void {
    this.samples = 0;
    this.windows = 0;
    this.energyNwh = 0n;
    this.flags = 0;
    this.rows = 0;
    this.wsum.fill(0);
    this.weight.fill(0);
    this.min.fill(NaN);
    this.max.fill(NaN);
  }

  add(row: FoldRow): void {
    this.rows++;
    this.samples += row.samples;
    this.windows += row.windows;
    this.energyNwh += row.energyNwh;
    this.flags |= row.flags;
    for (let k = 0; k < Q; k++) {
      const w = row.weight[k]!;
      if (w === 0) continue;
      this.wsum[k]! += row.wsum[k]!;
      this.weight[k]! += w;
      const lo = row.min[k]!;
      const hi = row.max[k]!;
      if (!(lo >= this.min[k]!)) this.min[k] = lo;
      if (!(hi <= this.max[k]!)) this.max[k] = hi;
    }
  }

  /** Sample-weighted mean of quantity k, null when no window in the bucket defined it. */
  mean(k: number): number | null {
    const w = this.weight[k]!;
    return w > 0 ? this.wsum[k]! / w : null;
  }

  minOf(k: number): number | null {
    return this.weight[k]! > 0 ? this.min[k]! : null;
  }

  maxOf(k: number): number | null {
    return this.weight[k]! > 0 ? this.max[k]! : null;
  }
}

/** Column list and row decoder for the rollups table, in QUANTITIES order. */
export const ROLLUP_SELECT = `t_start_ms, samples, windows, energy_nwh, flags, ${QUANTITIES.map(
  (q) => `${q}_wsum, ${q}_weight, ${q}_min, ${q}_max`,
).join(', ')}`;

/** Column list for the windows table. */
export const WINDOW_SELECT = `t_end_ms, samples, energy_nwh, flags, ${QUANTITIES.join(', ')}`;

/** Fill `row` from a raw rollups row (from ROLLUP_SELECT with .raw()); reuses its arrays. */
export function rollupRowInto(raw: unknown[], row: FoldRow): FoldRow {
  row.tMs = Number(raw[0]);
  row.samples = Number(raw[1]);
  row.windows = Number(raw[2]);
  row.energyNwh = BigInt(raw[3] as number | bigint);
  row.flags = Number(raw[4]);
  for (let k = 0; k < Q; k++) {
    const base = 5 + 4 * k;
    row.wsum[k] = Number(raw[base]);
    row.weight[k] = Number(raw[base + 1]);
    row.min[k] = raw[base + 2] === null ? NaN : Number(raw[base + 2]);
    row.max[k] = raw[base + 3] === null ? NaN : Number(raw[base + 3]);
  }
  return row;
}

/** Fill `row` from a raw windows row (from WINDOW_SELECT with .raw()). */
export function windowRowInto(raw: unknown[], row: FoldRow): FoldRow {
  row.tMs = Number(raw[0]);
  const samples = Number(raw[1]);
  row.samples = samples;
  row.windows = 1;
  row.energyNwh = BigInt(raw[2] as number | bigint);
  row.flags = Number(raw[3]);
  for (let k = 0; k < Q; k++) {
    const v = raw[4 + k];
    if (v === null || v === undefined) {
      row.weight[k] = 0;
      row.wsum[k] = 0;
      row.min[k] = NaN;
      row.max[k] = NaN;
    } else {
      const x = Number(v);
      row.weight[k] = samples;
      row.wsum[k] = x * samples;
      row.min[k] = x;
      row.max[k] = x;
    }
  }
  return row;
}

export function emptyFoldRow(): FoldRow {
  return {
    tMs: 0, samples: 0, windows: 0, energyNwh: 0n, flags: 0,
    wsum: new Float64Array(Q), weight: new Float64Array(Q), min: new Float64Array(Q), max: new Float64Array(Q),
  };
}
