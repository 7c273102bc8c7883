// The writer's queue and its transaction: window rows, gaps, dirty epochs and device totals wait here until
// flush() writes them, the rollup deltas and the ledger in ONE transaction (see store.ts). A flush that fails
// (disk full) rolls back and keeps its batch queued for the next try, every RETRY_MS (write-health.ts).

import type Database from 'better-sqlite3';
import type { Rollups, RollupBucket } from './rollups.ts';
import { QUANTITIES } from './schema.ts';
import { StoreError, type DeviceState, type StoreCounters, type StoreOptions } from './types.ts';
import { WINDOWS_PER_INSERT, windowInsertSql, WindowRows } from './window-rows.ts';
import { RETRY_MS, WriteHealthTracker, type WriteHealth } from './write-health.ts';

function prepareWriteStatements(db: Database.Database) {
  return {
    insertWindow: db.prepare(windowInsertSql(1)),
    insertWindows: db.prepare(windowInsertSql(WINDOWS_PER_INSERT)),
    insertGap: db.prepare(
      'INSERT INTO energy_gaps (device, epoch, at_index, t_ms, raw, energy_nwh, reason) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ),
    updateEpoch: db.prepare(
      `UPDATE epochs SET anchor_index = ?, anchor_ms = ?, first_end_index = ?, last_end_index = ?, last_t_ms = ?,
         raw_booked = ?, energy_base = ?, last_energy = ?, last_energy_index = ?, scale_kv = ?, scale_ki = ?,
         seg_raw = ?, seg_nwh = ?, nwh_booked = ? WHERE id = ?`,
    ),
    insertEvent: db.prepare('INSERT INTO events (device, t_ms, until_ms, kind, detail) VALUES (?, ?, ?, ?, ?)'),
    updateDeviceTotal: db.prepare('UPDATE devices SET total_nwh = ?, last_seen_ms = ? WHERE id = ?'),
    windowAt: db.prepare('SELECT sum_vi FROM windows WHERE device = ? AND epoch = ? AND end_index = ?').safeIntegers(true),
  };
}

export type WriteStatements = ReturnType<typeof prepareWriteStatements>;

/**
 * Rows of another module written in the store's transaction, so that they are on disk exactly when the windows
 * are (the MQTT outbox of what the host stored; the collector's position in each host's stream). `write` runs
 * inside the transaction; `committed` after it succeeded (a failed one is rolled back and retried with the
 * next flush, so `write` must keep its rows until `committed`).
 */
export interface FlushParticipant {
  readonly pending: boolean;
  write(db: Database.Database): void;
  committed(): void;
}

export class WriteQueue {
  readonly windowQueue: WindowRows;
  readonly gapQueue: unknown[][] = [];
  /** Event log rows (device, t_ms, until_ms, kind, detail), written with the next batch. */
  readonly eventQueue: unknown[][] = [];
  /** The write trouble going on (not 'ok'), to log as one period once writes get through again. */
  private trouble: WriteHealth | undefined;
  readonly dirtyDeviceTotals = new Set<DeviceState>();
  readonly participants: FlushParticipant[] = [];
  /** The parameters of one multi-row windows INSERT, reused: better-sqlite3 keeps nothing of it after run(). */
  private readonly multiRow: unknown[] = new Array<unknown>(WINDOWS_PER_INSERT * (17 + QUANTITIES.length + 1)).fill(null);
  readonly flushIntervalMs: number;
  readonly flushRows: number;
  private timer: NodeJS.Timeout | undefined;
  closed = false;
  readonly writeHealth: WriteHealthTracker;
  /** Undefined when read-only. */
  readonly stmts: WriteStatements | undefined;
  /** The batch write, wrapped once: a fresh closure per flush would throw away its optimised code each time. */
  private readonly writeTx: ((...batch: Parameters<WriteQueue['writeBatch']>) => void) | undefined;

  constructor(
    private readonly db: Database.Database,
    private readonly path: string,
    private readonly devices: ReadonlyMap<string, DeviceState>,
    /** Rollups and packs; undefined when read-only. */
    private readonly rollups: Rollups | undefined,
    private readonly counters: StoreCounters,
    options: StoreOptions,
  ) {
    this.flushIntervalMs = options.flushIntervalMs ?? 500;
    this.flushRows = options.flushRows ?? 4096;
    // Sized for a whole batch up front: growing it mid-ingest costs a copy and a stall.
    this.windowQueue = new WindowRows(QUANTITIES.length, options.readonly ? 1 : Math.min(this.flushRows, 65_536));
    this.writeHealth = new WriteHealthTracker(
      path,
      (h) => {
        this.logTrouble(h);
        (options.onWriteHealth ?? ((x) => process.emitWarning(x.state === 'ok' ? `${path}: writing again` : x.detail, 'CrabwattStoreWarning')))(h);
      },
      Date.now(),
    );
    const readonly = options.readonly ?? false;
    this.stmts = readonly ? undefined : prepareWriteStatements(db);
    this.writeTx = readonly ? undefined : db.transaction((...batch: Parameters<WriteQueue['writeBatch']>) => this.writeBatch(...batch));
  }

  /** A disk-full (or failing) period becomes one event, queued when it ends: while it lasts nothing can be written. */
  private logTrouble(h: WriteHealth): void {
    if (h.state !== 'ok') {
      this.trouble ??= h;
      return;
    }
    if (!this.trouble) return;
    this.eventQueue.push([null, this.trouble.sinceMs, h.sinceMs, this.trouble.state === 'disk_full' ? 'disk_full' : 'write_failing', this.trouble.detail]);
    this.trouble = undefined;
    this.armTimer();
  }

  armTimer(): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      try {
        this.flush();
      } catch {
        // No caller to throw to from a timer: the write health reports it (once per change), and flush armed
        // the retry.
      }
    }, this.writeHealth.failing ? RETRY_MS : this.flushIntervalMs);
    this.timer.unref?.();
  }

  /** Write everything queued, the rollups and the ledger in one transaction. */
  flush(): void {
    if (!this.stmts || !this.rollups || this.closed) return;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const dirtyEpochs = [...this.devices.values()].filter((d) => d.epoch.dirty && d.epoch.id !== -1);
    const openBuckets = [...this.devices.values()].flatMap((d) => d.open.filter((b) => b.rows > 0));
    if (this.windowQueue.length === 0 && this.gapQueue.length === 0 && this.eventQueue.length === 0 && this.rollups.queue.length === 0 && openBuckets.length === 0 && dirtyEpochs.length === 0 && !this.participants.some((p) => p.pending)) return;
    const windows = this.windowQueue.length;
    const gaps = this.gapQueue;
    const rollups = this.rollups.queue.concat(openBuckets);
    const totals = [...this.dirtyDeviceTotals];
    const nowMs = Date.now();
    try {
      this.writeTx!(windows, gaps, rollups, dirtyEpochs, totals, nowMs);
    } catch (err) {
      // The transaction rolled back and the batch stays queued, the ledger with it: the next flush writes it
      // whole, with what came since, so nothing is lost or booked twice. Only the packing bookkeeping ran ahead
      // of the database: look for unpacked hours again.
      for (const dev of this.devices.values()) {
        dev.packCheckedBefore = -Infinity;
        dev.packScanFrom = -Infinity;
      }
      this.rollups.reloadPacked(this.devices.values());
      this.writeHealth.failed(err, this.windowQueue.length, nowMs);
      // Retried by the timer, so a queue waiting for space is written without a new window having to come first.
      this.armTimer();
      throw new StoreError(`could not write to ${this.path}: ${(err as Error).message}`);
    }
    this.windowQueue.length = 0;
    this.gapQueue.length = 0;
    this.eventQueue.length = 0;
    this.dirtyDeviceTotals.clear();
    for (const dev of dirtyEpochs) dev.epoch.dirty = false;
    // The open buckets keep collecting, now as additions to what was just written.
    for (const b of openBuckets) b.reset();
    for (const b of this.rollups.queue.splice(0)) this.rollups.recycle(b);
    this.counters.flushes++;
    this.writeHealth.succeeded(nowMs);
    for (const p of this.participants) p.committed();
  }

  /** The body of flush's transaction: the first `windows` rows of the window queue, then the rest. */
  private writeBatch(
    windows: number, gaps: unknown[][], rollups: RollupBucket[], dirtyEpochs: DeviceState[], totals: DeviceState[], nowMs: number,
  ): void {
    const s = this.stmts!;
    const queue = this.windowQueue;
    const bound = this.multiRow;
    const columns = queue.columns;
    let k = 0;
    for (; k + WINDOWS_PER_INSERT <= windows; k += WINDOWS_PER_INSERT) {
      for (let j = 0; j < WINDOWS_PER_INSERT; j++) queue.rowInto(k + j, bound, j * columns);
      s.insertWindows.run(bound);
    }
    for (; k < windows; k++) s.insertWindow.run(queue.rowAt(k));
    for (const row of gaps) s.insertGap.run(row);
    for (const row of this.eventQueue) s.insertEvent.run(row);
    for (const b of rollups) this.rollups!.writeBucket(b);
    this.rollups!.packClosedHours(this.devices);
    for (const dev of dirtyEpochs) this.writeEpoch(dev);
    for (const dev of totals) s.updateDeviceTotal.run(dev.epoch.totalAtStart + dev.epoch.nwhBooked, nowMs, dev.id);
    for (const p of this.participants) p.write(this.db);
  }

  writeEpoch(dev: DeviceState): void {
    const e = dev.epoch;
    this.stmts!.updateEpoch.run(
      e.anchorIndex, e.anchorMs, e.firstEndIndex, e.lastEndIndex, e.lastTms, e.rawBooked.toString(),
      e.energyBase?.toString() ?? null, e.lastEnergy?.toString() ?? null, e.lastEnergyIndex, e.scaleKv, e.scaleKi,
      e.segRaw.toString(), e.segNwh, e.nwhBooked, e.id,
    );
  }

  /** No more timers or flushes (the store is closing). */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
