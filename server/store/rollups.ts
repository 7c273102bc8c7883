// Rollups and packs on the write path: the bucket each level is filling, the buckets waiting for the next
// transaction, merging them into their stored rows, and packing closed hours of the 1 s level (pack.ts).

import type Database from 'better-sqlite3';
import { Bucket, statsBlob, statsInto } from './fold.ts';
import { PACK_MS, PACKED_LEVEL_MS, Packer } from './pack.ts';
import { QUANTITIES, ROLLUP_LEVELS } from './schema.ts';
import type { DeviceState } from './types.ts';

export const LEVEL_MS: readonly number[] = ROLLUP_LEVELS.map((l) => l.ms);

/**
 * Closed hours packed per batch at most (pack.ts). A new hour closes once an hour; more than one to pack means
 * a backlog (a database from before the packs, hours left open by a restart), worked off a few per batch so
 * that no batch stalls ingest: an hour costs ~10 ms.
 */
const PACK_HOURS_PER_BATCH = 4;

/** A rollup bucket's additions since the last flush. */
export class RollupBucket extends Bucket {
  device = 0;
  levelMs = 0;
  tStartMs = 0;
  /**
   * Window energy not yet in energyNwh, as an exact integer double (kept a safe integer, else the window goes
   * to energyNwh directly): a BigInt addition per level per window was a noticeable part of ingest.
   */
  private pendingNwh = 0;

  /**
   * Bucket.addWindow with the per-window work done once for all levels by the caller: defined[k] says whether
   * quantity k is a finite number, weighted[k] = values[k]·samples (the very product addWindow forms).
   */
  addPrepared(samples: number, nwh: bigint, nwhNumber: number, flags: number, defined: Uint8Array, values: Float64Array, weighted: Float64Array): void {
    this.rows++;
    this.samples += samples;
    this.windows++;
    const pending = this.pendingNwh + nwhNumber;
    if (Number.isSafeInteger(nwhNumber) && Number.isSafeInteger(pending)) this.pendingNwh = pending;
    else this.energyNwh += nwh;
    this.flags |= flags;
    const wsum = this.wsum;
    const weight = this.weight;
    const min = this.min;
    const max = this.max;
    for (let k = 0; k < defined.length; k++) {
      if (defined[k] === 0) continue;
      const v = values[k]!;
      wsum[k]! += weighted[k]!;
      weight[k]! += samples;
      if (!(v >= min[k]!)) min[k] = v;
      if (!(v <= max[k]!)) max[k] = v;
    }
  }

  /** Move the pending energy into energyNwh (before energyNwh is read). */
  settle(): void {
    if (this.pendingNwh !== 0) {
      this.energyNwh += BigInt(this.pendingNwh);
      this.pendingNwh = 0;
    }
  }

  override reset(): void {
    super.reset();
    this.pendingNwh = 0;
  }
}

export class Rollups {
  readonly packer: Packer;
  /** Buckets left behind by the time (no window will come for them from this process), not yet written. */
  readonly queue: RollupBucket[] = [];
  /** Written buckets, reset, for reuse: at fast ingest a bucket per window would churn the GC. */
  private readonly pool: RollupBucket[] = [];
  /** Per device id, the end of its latest packed hour: a 1 s bucket written before it invalidates its hour's pack. */
  private readonly packedBefore = new Map<number, number>();
  /** A pack was dropped: look for unpacked hours from the oldest again. */
  private packRescan = false;
  private readonly db: Database.Database;
  private readonly rollupAt: Database.Statement;
  private readonly putRollup: Database.Statement;
  /** Scratch for writeBucket's merge of a bucket with its stored row. */
  private readonly merged = new Bucket();

  constructor(db: Database.Database) {
    this.db = db;
    this.packer = new Packer(db);
    this.rollupAt = db
      .prepare('SELECT samples, windows, energy_nwh, flags, stats FROM rollups WHERE device = ? AND level = ? AND t_start_ms = ?')
      .safeIntegers(true)
      .raw(true);
    this.putRollup = db.prepare(
      'INSERT OR REPLACE INTO rollups (device, level, t_start_ms, samples, windows, energy_nwh, flags, stats) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    );
  }

  /** A device attached to the store: where its packs end. */
  attach(deviceId: number): void {
    const lastPack = this.db.prepare('SELECT max(t_start_ms) FROM rollup_packs WHERE device = ?').pluck().get(deviceId) as number | null;
    if (lastPack !== null) this.packedBefore.set(deviceId, lastPack + PACK_MS);
  }

  /** The bucket of a level that holds instant tMs; the open one is retired to the queue when time moved on. */
  bucketFor(state: DeviceState, level: number, tMs: number): RollupBucket {
    const ms = LEVEL_MS[level]!;
    const start = Math.floor(tMs / ms) * ms;
    const open = state.open[level];
    if (open && open.tStartMs === start) return open;
    if (open && open.rows > 0) this.queue.push(open);
    const fresh = this.pool.pop() ?? new RollupBucket();
    fresh.device = state.id;
    fresh.levelMs = ms;
    fresh.tStartMs = start;
    state.open[level] = fresh;
    return fresh;
  }

  /** Merge a bucket's additions into its stored row (read, fold, replace: SQL cannot fold the stats BLOB). */
  writeBucket(b: RollupBucket): void {
    b.settle();
    // Times are monotone (timeOf), so a packed hour gets no more buckets as a rule; one that does all the same (a
    // late window, a gap booked at an old time, a clock or a database tampered with) turns the hour back into
    // rows first, so the merge below sees the stored bucket, and the backfill packs the hour again later.
    if (b.levelMs === PACKED_LEVEL_MS && b.tStartMs < (this.packedBefore.get(b.device) ?? -Infinity)) {
      this.packer.unpackHour(b.device, Math.floor(b.tStartMs / PACK_MS) * PACK_MS);
      this.packRescan = true;
    }
    const existing = this.rollupAt.get(b.device, b.levelMs, b.tStartMs) as [bigint, bigint, bigint, bigint, Uint8Array] | undefined;
    let row: Bucket = b;
    if (existing) {
      const stored = {
        tMs: b.tStartMs, samples: Number(existing[0]), windows: Number(existing[1]), energyNwh: existing[2], flags: Number(existing[3]),
        wsum: new Float64Array(QUANTITIES.length), weight: new Float64Array(QUANTITIES.length),
        min: new Float64Array(QUANTITIES.length), max: new Float64Array(QUANTITIES.length),
      };
      statsInto(existing[4], stored);
      // Folded into a scratch bucket, not into b: if the transaction rolls back (disk full), b is written again
      // as it was, and must not carry the stored row a second time.
      row = this.merged;
      row.reset();
      row.add(stored);
      row.add({ ...b, tMs: b.tStartMs });
    }
    this.putRollup.run(b.device, b.levelMs, b.tStartMs, row.samples, row.windows, row.energyNwh, row.flags, statsBlob(row));
  }

  /** After a rolled-back transaction: the packs it made are gone, so where each device's packs end is re-read. */
  reloadPacked(devices: Iterable<DeviceState>): void {
    this.packedBefore.clear();
    for (const dev of devices) this.attach(dev.id);
  }

  /** A written bucket from the queue, reset, back to the pool. */
  recycle(b: RollupBucket): void {
    b.reset();
    if (this.pool.length < 4096) this.pool.push(b);
  }

  /**
   * Pack the device's closed hours that have no pack yet (pack.ts), at most PACK_HOURS_PER_BATCH. An hour is
   * closed when the next window cannot land in it: it books at or after the epoch's last time, into the bucket
   * holding the millisecond before it.
   */
  packClosedHours(devices: ReadonlyMap<string, DeviceState>): void {
    const packer = this.packer;
    if (this.packRescan) {
      this.packRescan = false;
      for (const dev of devices.values()) {
        dev.packCheckedBefore = -Infinity;
        dev.packScanFrom = -Infinity;
      }
    }
    for (const dev of devices.values()) {
      const last = dev.epoch.lastTms;
      if (last === null) continue;
      const closedBefore = Math.floor((last - 1) / PACK_MS) * PACK_MS;
      if (closedBefore <= dev.packCheckedBefore && !dev.packBackfill) continue;
      const hours = packer.unpackedHours(dev.id, dev.packScanFrom, closedBefore, PACK_HOURS_PER_BATCH);
      for (const h of hours) {
        packer.packHour(dev.id, h);
        if (h + PACK_MS > (this.packedBefore.get(dev.id) ?? -Infinity)) this.packedBefore.set(dev.id, h + PACK_MS);
      }
      dev.packCheckedBefore = closedBefore;
      dev.packBackfill = hours.length === PACK_HOURS_PER_BATCH;
      // Every closed hour up to the last one packed (or, with no backlog, up to closedBefore) has its pack now.
      dev.packScanFrom = dev.packBackfill ? hours[hours.length - 1]! + PACK_MS : closedBefore;
    }
  }
}
