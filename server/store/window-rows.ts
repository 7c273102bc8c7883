// The queue of window rows waiting for the next transaction, kept in typed arrays.
//
// Why not an array of row arrays: a batch lives for up to flushRows windows (half a second of ingest), so
// each row, its boxed numbers and its BigInts survive the young-generation collections, get copied and then
// promoted to the old generation — at full ingest rate that copying was most of the garbage collector's
// time. Here a row is written into columns that are allocated once; the frame it came from dies young.
// Reading a row back yields the very values that were pushed (a Float64Array holds any number exactly, -0
// and NaN included; a BigInt64Array any bigint in the signed 64-bit range, which the caller checks: a typed
// array would wrap a wider one silently), so the statement binds exactly what it bound before.
//
// Column order is the windows INSERT's: device, epoch, end_index, t_end_ms, samples, sum_v, sum_i, sum_vv,
// sum_ii, sum_vi, min_v, max_v, min_i, max_i, zc_count, flags, config_seq, the quantities, energy_nwh.

import { QUANTITIES } from './schema.ts';
import type { WindowInput } from './types.ts';

/** Columns of the INSERT: 17 fixed, the quantities, energy_nwh. */
const FIXED_NUMBERS = 11; // device, epoch, t_end_ms, samples, min_v … config_seq
const BIGS = 7; // end_index, sum_v, sum_i, sum_vv, sum_ii, sum_vi, energy_nwh

/**
 * Window rows per INSERT statement in a batch. better-sqlite3 pays a fixed cost per run() (bind, step, reset,
 * the JS↔C++ crossing) that a multi-row VALUES list shares out; 32 rows × 27 columns = 864 parameters, well
 * under SQLite's limit of 32 766. Measured with `crabwatt bench`: 16 → 32 → 64 rows gained less each step.
 */
export const WINDOWS_PER_INSERT = 32;

/** The windows INSERT with `rows` rows of parameters (columns in WindowRows order). */
export function windowInsertSql(rows: number): string {
  const columns = 17 + QUANTITIES.length + 1;
  const one = `(${Array(columns).fill('?').join(', ')})`;
  return `INSERT OR IGNORE INTO windows (device, epoch, end_index, t_end_ms, samples, sum_v, sum_i, sum_vv, sum_ii, sum_vi,
     min_v, max_v, min_i, max_i, zc_count, flags, config_seq, ${QUANTITIES.join(', ')}, energy_nwh)
   VALUES ${Array(rows).fill(one).join(', ')}`;
}

export class WindowRows {
  private readonly quantities: number;
  private readonly numberStride: number;
  private capacity = 0;
  private numbers = new Float64Array(0);
  private bigs = new BigInt64Array(0);
  /** 1 where the quantity is null. */
  private nulls = new Uint8Array(0);
  /** The bound row, reused: better-sqlite3 reads it during run() and keeps nothing. */
  readonly row: unknown[];
  length = 0;

  constructor(quantities: number, initialCapacity = 1024) {
    this.quantities = quantities;
    this.numberStride = FIXED_NUMBERS + quantities;
    this.row = new Array<unknown>(17 + quantities + 1).fill(null);
    this.grow(Number.isFinite(initialCapacity) && initialCapacity >= 1 ? Math.floor(initialCapacity) : 1024);
  }

  private grow(capacity: number): void {
    const numbers = new Float64Array(capacity * this.numberStride);
    const bigs = new BigInt64Array(capacity * BIGS);
    const nulls = new Uint8Array(capacity * this.quantities);
    numbers.set(this.numbers);
    bigs.set(this.bigs);
    nulls.set(this.nulls);
    this.numbers = numbers;
    this.bigs = bigs;
    this.nulls = nulls;
    this.capacity = capacity;
  }

  /**
   * Queue one row. The caller has checked that every bigint fits a signed 64-bit integer; `values` holds the
   * quantities in column order, and nulls[k] is 1 where quantity k is null (values[k] is ignored then).
   */
  push(device: number, epoch: number, win: WindowInput, tMs: number, values: ArrayLike<number>, nulls: ArrayLike<number>, energyNwh: bigint): void {
    if (this.length === this.capacity) this.grow(this.capacity * 2);
    const k = this.length;
    const n = this.numbers;
    let o = k * this.numberStride;
    n[o] = device;
    n[o + 1] = epoch;
    n[o + 2] = tMs;
    n[o + 3] = win.samples;
    n[o + 4] = win.min_v;
    n[o + 5] = win.max_v;
    n[o + 6] = win.min_i;
    n[o + 7] = win.max_i;
    n[o + 8] = win.zc_count;
    n[o + 9] = win.flags;
    n[o + 10] = win.config_seq;
    o += FIXED_NUMBERS;
    const q = this.quantities;
    const nullAt = k * q;
    for (let j = 0; j < q; j++) {
      const isNull = nulls[j] === 1;
      this.nulls[nullAt + j] = isNull ? 1 : 0;
      n[o + j] = isNull ? 0 : values[j]!;
    }
    const b = this.bigs;
    const at = k * BIGS;
    b[at] = win.end_index;
    b[at + 1] = win.sum_v;
    b[at + 2] = win.sum_i;
    b[at + 3] = win.sum_vv;
    b[at + 4] = win.sum_ii;
    b[at + 5] = win.sum_vi;
    b[at + 6] = energyNwh;
    this.length = k + 1;
  }

  /** Fill `this.row` with row k (k < length) and return it. */
  rowAt(k: number): unknown[] {
    this.rowInto(k, this.row, 0);
    return this.row;
  }

  /** The columns of one row (k < length), written into `target` from `offset` on (27 of them for 9 quantities). */
  rowInto(k: number, target: unknown[], offset: number): void {
    const r = target;
    const n = this.numbers;
    const o = k * this.numberStride;
    const b = this.bigs;
    const at = k * BIGS;
    const p = offset;
    r[p] = n[o];
    r[p + 1] = n[o + 1];
    r[p + 2] = b[at];
    r[p + 3] = n[o + 2];
    r[p + 4] = n[o + 3];
    r[p + 5] = b[at + 1];
    r[p + 6] = b[at + 2];
    r[p + 7] = b[at + 3];
    r[p + 8] = b[at + 4];
    r[p + 9] = b[at + 5];
    for (let j = 0; j < 7; j++) r[p + 10 + j] = n[o + 4 + j];
    const q = this.quantities;
    const nullAt = k * q;
    for (let j = 0; j < q; j++) r[p + 17 + j] = this.nulls[nullAt + j] === 1 ? null : n[o + FIXED_NUMBERS + j];
    r[p + 17 + q] = b[at + 6];
  }

  /** Columns per row. */
  get columns(): number {
    return 17 + this.quantities + 1;
  }
}
