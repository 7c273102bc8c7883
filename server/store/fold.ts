// Folding rows (windows or rollup buckets) into wider buckets: sample-weighted means, min of mins, max of
// maxes, exact integer energy. One implementation serves the history query and the CSV export.

import { QUANTITIES, STATS_BYTES } from './schema.ts';

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

/** Per-quantity accumulators: sample-weighted sum, weight, min of mins, max of maxes. */
export interface StatsArrays {
  wsum: Float64Array;
  weight: Float64Array;
  min: Float64Array;
  max: Float64Array;
}

/**
 * Fold one quantity's (wsum, weight, min, max) into slot `at` of `into`: the one merge step of every fold (Bucket,
 * the export's rows, the history fast path), so they agree number for number. A weight of 0 (the quantity was
 * undefined) adds nothing; the negated comparisons let a NaN slot (nothing yet) take the first value.
 */
export function foldQuantity(into: StatsArrays, at: number, wsum: number, weight: number, lo: number, hi: number): void {
  if (weight === 0) return;
  into.wsum[at]! += wsum;
  into.weight[at]! += weight;
  if (!(lo >= into.min[at]!)) into.min[at] = lo;
  if (!(hi <= into.max[at]!)) into.max[at] = hi;
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
    for (let k = 0; k < Q; k++) foldQuantity(this, k, row.wsum[k]!, row.weight[k]!, row.min[k]!, row.max[k]!);
  }

  /** Add one window: its quantities (in QUANTITIES order, null when undefined) weigh by its samples. */
  addWindow(samples: number, energyNwh: bigint, flags: number, values: ArrayLike<number | null>): void {
    this.rows++;
    this.samples += samples;
    this.windows++;
    this.energyNwh += energyNwh;
    this.flags |= flags;
    for (let k = 0; k < Q; k++) {
      const v = values[k];
      if (v === null || v === undefined || !Number.isFinite(v)) continue;
      this.wsum[k]! += v * samples;
      this.weight[k]! += samples;
      if (!(v >= this.min[k]!)) this.min[k] = v;
      if (!(v <= this.max[k]!)) this.max[k] = v;
    }
  }

  /** Energy that no window carried (a booked gap): counts in the bucket's energy only. */
  addEnergy(energyNwh: bigint): void {
    this.rows++;
    this.energyNwh += energyNwh;
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

/** Column list of the rollups table for rollupRowInto. */
export const ROLLUP_SELECT = 't_start_ms, samples, windows, energy_nwh, flags, stats';

/** The stats BLOB of a bucket (layout: schema.ts). */
export function statsBlob(b: StatsArrays): Buffer {
  const buf = Buffer.allocUnsafe(STATS_BYTES);
  for (let k = 0; k < Q; k++) {
    const o = 32 * k;
    buf.writeDoubleLE(b.wsum[k]!, o);
    buf.writeDoubleLE(b.weight[k]!, o + 8);
    buf.writeDoubleLE(b.min[k]!, o + 16);
    buf.writeDoubleLE(b.max[k]!, o + 24);
  }
  return buf;
}

/** Decode a stats BLOB into a row's arrays. */
export function statsInto(blob: Uint8Array, row: StatsArrays): void {
  if (blob.length !== STATS_BYTES) throw new Error(`rollup stats blob has ${blob.length} bytes, expected ${STATS_BYTES}`);
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  for (let k = 0; k < Q; k++) {
    const o = 32 * k;
    row.wsum[k] = view.getFloat64(o, true);
    row.weight[k] = view.getFloat64(o + 8, true);
    row.min[k] = view.getFloat64(o + 16, true);
    row.max[k] = view.getFloat64(o + 24, true);
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Float64Array([1]).buffer)[7] === 0x3f;

/**
 * A stats BLOB as float64s ([wsum, weight, min, max] per quantity): a view on the blob itself when it is aligned
 * (better-sqlite3 gives each BLOB its own buffer) and the host is little-endian, else decoded into `scratch`.
 * No copy per row on the hot paths (export, history).
 */
export function statsFloats(blob: Uint8Array, scratch: Float64Array): Float64Array {
  if (blob.length !== STATS_BYTES) throw new Error(`rollup stats blob has ${blob.length} bytes, expected ${STATS_BYTES}`);
  if (LITTLE_ENDIAN && blob.byteOffset % 8 === 0) return new Float64Array(blob.buffer, blob.byteOffset, STATS_BYTES / 8);
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  for (let k = 0; k < STATS_BYTES / 8; k++) scratch[k] = view.getFloat64(8 * k, true);
  return scratch;
}

/** Column list for the windows table. */
export const WINDOW_SELECT = `t_end_ms, samples, energy_nwh, flags, ${QUANTITIES.join(', ')}`;

/** Fill `row` from a raw rollups row (ROLLUP_SELECT with .raw()); reuses its arrays. */
export function rollupRowInto(raw: unknown[], row: FoldRow): FoldRow {
  row.tMs = raw[0] as number;
  row.samples = raw[1] as number;
  row.windows = raw[2] as number;
  row.energyNwh = BigInt(raw[3] as number | bigint);
  row.flags = raw[4] as number;
  statsInto(raw[5] as Uint8Array, row);
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
