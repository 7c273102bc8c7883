// Packed 1 s rollups: one row per device and closed UTC hour holding that hour's 1 s buckets as one float64
// array, so that a reader of a year of 1 s rows (the CSV export) steps SQLite 8 760 times instead of 31.5
// million. SQLite's cost is per row stepped and per column read (~2 µs a 1 s row with its stats BLOB), far
// above what formatting the row costs; a pack is one BLOB read as a Float64Array view.
//
// A closed hour lives in exactly one place (schema 3): as 1 s rows in `rollups` (not packed yet, unpacked
// again, or unpackable) or as one pack, never both, so the 1 s level is stored once. The writer packs an hour
// once no window can land in it any more (the store's times are monotone per device, see Store.timeOf) and
// deletes its rows in the same transaction; a write that touches a packed hour all the same (a late window, a
// gap booking) first unpacks it back into rows, in the transaction of that write, and the backfill packs it again later.
// Readers of the 1 s level take the union of packs and rows (query.ts), each step in one read transaction so
// that a concurrent pack or unpack is seen whole or not at all.
//
// Layout of `data`: `rows` records of PACK_STRIDE little-endian float64, in time order:
//   t_start_ms, samples, windows, energy_nwh, flags, then the stats BLOB's 36 values (schema.ts).
// Every one of these is exact in a float64 except energy_nwh beyond 2^53 nWh (32 GW for a second): an hour
// holding such a bucket is stored with rows = 0 and an empty BLOB, meaning "this hour's rows are kept, read them".

import type Database from 'better-sqlite3';
import type { FoldRow } from './fold.ts';
import { QUANTITIES, STATS_BYTES } from './schema.ts';

/** Length of a pack: one UTC hour. */
export const PACK_MS = 3_600_000;
/** The rollup level (bucket length) that is packed. */
export const PACKED_LEVEL_MS = 1_000;
const STATS_FLOATS = STATS_BYTES / 8;
/** Offsets of the fields in a record. */
export const PACK_T = 0;
export const PACK_SAMPLES = 1;
export const PACK_WINDOWS = 2;
export const PACK_ENERGY = 3;
export const PACK_FLAGS = 4;
export const PACK_STATS = 5;
/** float64 values per record. */
export const PACK_STRIDE = PACK_STATS + STATS_FLOATS;
const MAX_ROWS = PACK_MS / PACKED_LEVEL_MS;

const LITTLE_ENDIAN = new Uint8Array(new Float64Array([1]).buffer)[7] === 0x3f;

/** A run of records: rows [begin, end) of `data`; `bigEnergy` holds the energies (by row) that are not safe integers. */
export interface RollupBlock {
  data: Float64Array;
  begin: number;
  end: number;
  bigEnergy: Map<number, bigint> | undefined;
}

/** Collects one hour's 1 s buckets into a pack. */
export class PackBuilder {
  readonly data = new Float64Array(MAX_ROWS * PACK_STRIDE);
  rows = 0;
  /** False once a bucket's energy was not a safe integer: the hour is then stored unpackable. */
  exact = true;

  reset(): void {
    this.rows = 0;
    this.exact = true;
  }

  /** Add a bucket; `stats` holds its STATS_FLOATS values from `statsAt` on. Buckets come in time order. */
  add(tMs: number, samples: number, windows: number, energyNwh: number | bigint, flags: number, stats: ArrayLike<number>, statsAt = 0): void {
    if (this.rows >= MAX_ROWS) throw new Error(`a pack holds at most ${MAX_ROWS} rows`);
    const o = this.rows * PACK_STRIDE;
    const d = this.data;
    d[o + PACK_T] = tMs;
    d[o + PACK_SAMPLES] = samples;
    d[o + PACK_WINDOWS] = windows;
    const e = Number(energyNwh);
    if (!Number.isSafeInteger(e)) this.exact = false;
    d[o + PACK_ENERGY] = e;
    d[o + PACK_FLAGS] = flags;
    for (let k = 0; k < STATS_FLOATS; k++) d[o + PACK_STATS + k] = stats[statsAt + k]!;
    this.rows++;
  }

  /** rows and BLOB to store (rows 0 and an empty BLOB for an unpackable hour). */
  encode(): { rows: number; data: Buffer } {
    if (!this.exact || this.rows === 0) return { rows: 0, data: Buffer.alloc(0) };
    const n = this.rows * PACK_STRIDE;
    if (LITTLE_ENDIAN) return { rows: this.rows, data: Buffer.from(this.data.buffer, 0, n * 8) };
    const buf = Buffer.allocUnsafe(n * 8);
    for (let k = 0; k < n; k++) buf.writeDoubleLE(this.data[k]!, 8 * k);
    return { rows: this.rows, data: buf };
  }
}

/** A stored pack's BLOB as float64 records: a view when aligned on a little-endian host, else a copy. */
export function packFloats(blob: Uint8Array, rows: number): Float64Array {
  if (blob.length !== rows * PACK_STRIDE * 8) {
    throw new Error(`rollup pack has ${blob.length} bytes for ${rows} rows, expected ${rows * PACK_STRIDE * 8}`);
  }
  if (LITTLE_ENDIAN && blob.byteOffset % 8 === 0) return new Float64Array(blob.buffer, blob.byteOffset, rows * PACK_STRIDE);
  const out = new Float64Array(rows * PACK_STRIDE);
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  for (let k = 0; k < out.length; k++) out[k] = view.getFloat64(8 * k, true);
  return out;
}

/** Statements of the writer's packing, prepared once per connection. */
export class Packer {
  private readonly builder = new PackBuilder();
  private readonly hourRows: Database.Statement;
  private readonly put: Database.Statement;
  private readonly unpacked: Database.Statement;
  private readonly drop: Database.Statement;
  private readonly dropRows: Database.Statement;
  private readonly packAt: Database.Statement;
  private readonly putRow: Database.Statement;

  constructor(db: Database.Database) {
    // The energy comes as a number; where it is not a safe integer the flag column says so (a number would
    // have lost digits), and the hour is stored unpackable.
    this.hourRows = db
      .prepare(
        `SELECT t_start_ms, samples, windows, energy_nwh, flags, stats, abs(energy_nwh) > 9007199254740991
         FROM rollups WHERE device = ? AND level = ${PACKED_LEVEL_MS} AND t_start_ms >= ? AND t_start_ms < ? ORDER BY t_start_ms`,
      )
      .raw(true);
    this.put = db.prepare('INSERT OR REPLACE INTO rollup_packs (device, t_start_ms, rows, data) VALUES (?, ?, ?, ?)');
    // Hours with data are the 1 h rollup rows (written with the 1 s rows, in the same transactions).
    this.unpacked = db
      .prepare(
        `SELECT r.t_start_ms FROM rollups r
         WHERE r.device = ? AND r.level = ${PACK_MS} AND r.t_start_ms >= ? AND r.t_start_ms < ?
           AND NOT EXISTS (SELECT 1 FROM rollup_packs p WHERE p.device = r.device AND p.t_start_ms = r.t_start_ms)
         ORDER BY r.t_start_ms LIMIT ?`,
      )
      .pluck();
    this.drop = db.prepare('DELETE FROM rollup_packs WHERE device = ? AND t_start_ms = ?');
    this.dropRows = db.prepare(`DELETE FROM rollups WHERE device = ? AND level = ${PACKED_LEVEL_MS} AND t_start_ms >= ? AND t_start_ms < ?`);
    this.packAt = db.prepare('SELECT rows, data FROM rollup_packs WHERE device = ? AND t_start_ms = ?').raw(true);
    this.putRow = db.prepare(
      `INSERT INTO rollups (device, level, t_start_ms, samples, windows, energy_nwh, flags, stats) VALUES (?, ${PACKED_LEVEL_MS}, ?, ?, ?, ?, ?, ?)`,
    );
  }

  /**
   * Pack the hour starting at hourMs (replacing any pack of it) and delete its 1 s rows; returns the rows packed
   * (0: none, or unpackable, whose rows stay). Call inside the transaction that wrote the hour's last rows.
   */
  packHour(device: number, hourMs: number): number {
    const b = this.builder;
    b.reset();
    const scratch = new Float64Array(STATS_FLOATS);
    for (const raw of this.hourRows.iterate(device, hourMs, hourMs + PACK_MS) as Iterable<unknown[]>) {
      const blob = raw[5] as Uint8Array;
      if (blob.length !== STATS_BYTES) throw new Error(`rollup stats blob has ${blob.length} bytes, expected ${STATS_BYTES}`);
      const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
      for (let k = 0; k < STATS_FLOATS; k++) scratch[k] = view.getFloat64(8 * k, true);
      if (raw[6] === 1) b.exact = false;
      b.add(raw[0] as number, raw[1] as number, raw[2] as number, raw[3] as number, raw[4] as number, scratch);
    }
    const { rows, data } = b.encode();
    this.put.run(device, hourMs, rows, data);
    if (rows > 0) this.dropRows.run(device, hourMs, hourMs + PACK_MS);
    return rows;
  }

  /**
   * Turn the hour's pack back into 1 s rows and delete the pack, before a write into that hour; returns the rows
   * restored (0 when the hour had no pack or an unpackable one, whose rows are there already).
   */
  unpackHour(device: number, hourMs: number): number {
    const row = this.packAt.get(device, hourMs) as [number, Uint8Array] | undefined;
    if (!row) return 0;
    const [rows, blob] = row;
    const data = packFloats(blob, rows);
    for (let r = 0; r < rows; r++) {
      const o = r * PACK_STRIDE;
      // The stats BLOB is the record's last STATS_FLOATS values, little-endian (as the pack).
      const stats = Buffer.allocUnsafe(STATS_BYTES);
      for (let k = 0; k < STATS_FLOATS; k++) stats.writeDoubleLE(data[o + PACK_STATS + k]!, 8 * k);
      this.putRow.run(device, data[o + PACK_T], data[o + PACK_SAMPLES], data[o + PACK_WINDOWS], data[o + PACK_ENERGY], data[o + PACK_FLAGS], stats);
    }
    this.drop.run(device, hourMs);
    return rows;
  }

  /** Hours in [fromMs, beforeMs) that have data and no pack, oldest first, at most `limit`. */
  unpackedHours(device: number, fromMs: number, beforeMs: number, limit: number): number[] {
    // -Infinity binds as a REAL, which SQLite orders before every integer.
    return this.unpacked.all(device, fromMs, beforeMs, limit) as number[];
  }

}

/** Whether the database has the packs table (schema 2 on); a read-only connection to an older one has not. */
export function hasPacks(db: Database.Database): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'rollup_packs'").get() !== undefined;
}

/** Record r of a block as a FoldRow (row is filled and returned). */
export function recordInto(block: RollupBlock, r: number, row: FoldRow): FoldRow {
  const d = block.data;
  const o = r * PACK_STRIDE;
  row.tMs = d[o + PACK_T]!;
  row.samples = d[o + PACK_SAMPLES]!;
  row.windows = d[o + PACK_WINDOWS]!;
  row.energyNwh = block.bigEnergy?.get(r) ?? BigInt(d[o + PACK_ENERGY]!);
  row.flags = d[o + PACK_FLAGS]!;
  for (let k = 0; k < QUANTITIES.length; k++) {
    const so = o + PACK_STATS + 4 * k;
    row.wsum[k] = d[so]!;
    row.weight[k] = d[so + 1]!;
    row.min[k] = d[so + 2]!;
    row.max[k] = d[so + 3]!;
  }
  return row;
}
