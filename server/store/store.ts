// The measurement store: devices, energy epochs, windows, gaps and rollups in one SQLite database.
//
// Write path: addWindow/addEnergy update an in-memory ledger per device and queue rows; flush() writes the queue,
// the rollup deltas and the ledger in ONE transaction. A kill -9 therefore loses at most the unflushed queue
// (flushIntervalMs, default 500 ms), and the ledger on disk always matches the rows on disk — so re-ingesting
// the lost frames books them exactly once, and frames already on disk are recognised as duplicates. A flush that
// fails (disk full) rolls back and keeps its batch queued for the next try (write-queue.ts, write-health.ts).
//
// Epochs: the device's accumulator and sample index restart at a reset. A new boot_id, or a sample index that
// goes backwards, opens a new epoch; the device total carries over, so it never drops at a reset.
//
// Energy: each window books nwh(R + sum_vi) − nwh(R) where R is the epoch's running Σ sum_vi (see energy.ts),
// and each accumulator snapshot is compared with R: what the windows did not carry (lost windows, host
// downtime) is booked as a gap, so the counter equals the device accumulator's delta. Windows and gaps both
// feed the rollups, so Σ rollup energy == Σ window energy + Σ gap energy == counter delta, at every level.

import type Database from 'better-sqlite3';
import { Booking } from './booking.ts';
import { checkScale, checkWindow, deviceHex, loadLatestEpoch, placeholderEpoch, startSegment } from './ledger.ts';
import type { ProcessLock } from './lock.ts';
import { openDatabase } from './open.ts';
import { PqRows } from './pq-rows.ts';
import { deleteExpired } from './retention.ts';
import { Rollups } from './rollups.ts';
import {
  parseRegisters,
  StoreError,
  type BookedGap,
  type BookedWindow,
  type CalibrationRegisters,
  type DeviceIdentity,
  type DeviceRef,
  type DeviceState,
  type Derived,
  type EnergyInput,
  type StoreCounters,
  type StoreOptions,
  type WindowInput,
} from './types.ts';
import { MAX_QUEUED_WINDOWS, type WriteHealth } from './write-health.ts';
import { WriteQueue, type FlushParticipant } from './write-queue.ts';

export { checkScale, deviceHex } from './ledger.ts';
export {
  StoreError,
  type BookedGap,
  type BookedWindow,
  type CalibrationRegisters,
  type DeviceIdentity,
  type DeviceRef,
  type Derived,
  type EnergyInput,
  type StoreCounters,
  type StoreOptions,
  type WindowInput,
} from './types.ts';
export { WINDOWS_PER_INSERT, windowInsertSql } from './window-rows.ts';
export type { WriteHealth, WriteState } from './write-health.ts';
export type { FlushParticipant } from './write-queue.ts';

export class Store {
  readonly db: Database.Database;
  readonly path: string;
  readonly counters: StoreCounters = { windows: 0, duplicates: 0, gaps: 0, epochs: 0, flushes: 0, unreconciledSnapshots: 0, clockSteps: 0 };
  private readonly lock: ProcessLock | undefined;
  private readonly devices = new Map<string, DeviceState>();
  /** Rollups and packs; undefined when read-only. */
  private readonly rollups: Rollups | undefined;
  private readonly windowRetentionMs: number | null;
  private readonly rollupRetentionMs: Partial<Record<string, number | null>>;
  private readonly onWarning: (message: string) => void;
  /** The queue, its transaction and the write health (write-queue.ts). */
  private readonly writes: WriteQueue;
  private readonly booking: Booking;
  /** The power-quality aggregates and events, written in the batch transactions (pq-rows.ts); undefined read-only. */
  readonly pqRows: PqRows | undefined;

  private constructor(path: string, options: StoreOptions) {
    this.path = path;
    const reanchorMs = options.reanchorMs ?? 2000;
    this.windowRetentionMs = options.windowRetentionMs === undefined ? 14 * 86_400_000 : options.windowRetentionMs;
    this.rollupRetentionMs = options.rollupRetentionMs ?? {};
    this.onWarning = options.onWarning ?? ((message) => process.emitWarning(message, 'CrabwattStoreWarning'));
    const readonly = options.readonly ?? false;
    const { db, lock } = openDatabase(path, options);
    this.db = db;
    this.lock = lock;
    this.rollups = readonly ? undefined : new Rollups(this.db);
    this.writes = new WriteQueue(this.db, path, this.devices, this.rollups, this.counters, options);
    this.booking = new Booking(this.rollups, this.writes, this.counters, reanchorMs);
    this.pqRows = readonly ? undefined : new PqRows(this.db, () => this.writes.armTimer());
    if (this.pqRows) this.writes.participants.push(this.pqRows);
  }

  static open(path: string, options: StoreOptions = {}): Store {
    return new Store(path, options);
  }

  private get w() {
    this.assertWritable();
    return this.writes.stmts!;
  }

  private assertWritable(): void {
    if (!this.writes.stmts) throw new StoreError('the store is open read-only');
    if (this.writes.closed) throw new StoreError('the store is closed');
  }

  /** Register (or find) a device from its identify frame; opens a new epoch when boot_id changed. */
  attachDevice(identity: DeviceIdentity, nowMs: number): DeviceRef {
    this.assertWritable();
    const hex = deviceHex(identity.deviceId);
    const existing = this.devices.get(hex);
    if (existing) {
      this.updateDeviceInfo(existing, identity, nowMs);
      if (existing.epoch.bootId !== identity.bootId) this.openEpoch(existing, identity.bootId, 'boot_id', nowMs);
      return this.ref(existing);
    }
    this.flush();
    const byId = this.db.prepare('SELECT id, kv, ki, calibration FROM devices WHERE device_id = ?').safeIntegers(true);
    let row = byId.get(hex) as { id: bigint; kv: number; ki: number; calibration: string | null } | undefined;
    if (!row) {
      checkScale(identity.defaultKv, identity.defaultKi, identity.fsNum, identity.fsDen);
      this.db
        .prepare(
          `INSERT INTO devices (device_id, name, kv, ki, fs_num, fs_den, board, adc_part, identify, calibration, created_ms, last_seen_ms)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          hex, identity.name ?? null, identity.defaultKv, identity.defaultKi, identity.fsNum, identity.fsDen,
          identity.board ?? null, identity.adcPart ?? null, JSON.stringify(identity.identify ?? null),
          JSON.stringify(identity.calibration ?? null), nowMs, nowMs,
        );
      row = byId.get(hex) as typeof row;
    }
    const r = row!;
    const fsNum = identity.fsNum;
    const fsDen = identity.fsDen;
    let { kv, ki } = r;
    let scale: ReturnType<typeof checkScale>;
    try {
      scale = checkScale(kv, ki, fsNum, fsDen);
    } catch (err) {
      if (!(err instanceof StoreError)) throw err;
      // A scale an older version let in would fail every window: fall back rather than never ingest again.
      scale = checkScale(identity.defaultKv, identity.defaultKi, fsNum, fsDen);
      this.onWarning(
        `device ${hex}: its stored scale cannot be used (${err.message}); using kv = ${identity.defaultKv}, ki = ` +
          `${identity.defaultKi} until a calibration is written (PUT /api/devices/${hex}/calibration)`,
      );
      kv = identity.defaultKv;
      ki = identity.defaultKi;
      this.db.prepare('UPDATE devices SET kv = ?, ki = ? WHERE id = ?').run(kv, ki, r.id);
    }
    const epoch = loadLatestEpoch(this.db, Number(r.id));
    const state: DeviceState = {
      id: Number(r.id),
      hex,
      kv,
      ki,
      calibration: parseRegisters(r.calibration) ?? (identity.calibration as CalibrationRegisters | undefined) ?? null,
      fsNum,
      fsDen,
      msPerSample: (1000 * fsDen) / fsNum,
      scale,
      open: [],
      epoch: epoch ?? placeholderEpoch(),
      packCheckedBefore: -Infinity,
      packBackfill: false,
      packScanFrom: -Infinity,
    };
    this.rollups!.attach(state.id);
    this.devices.set(hex, state);
    this.updateDeviceInfo(state, identity, nowMs);
    if (!epoch) this.openEpoch(state, identity.bootId, 'first', nowMs);
    else if (epoch.bootId !== identity.bootId) this.openEpoch(state, identity.bootId, 'boot_id', nowMs);
    else if (epoch.scaleKv !== state.kv || epoch.scaleKi !== state.ki) startSegment(state);
    return this.ref(state);
  }

  private ref(state: DeviceState): DeviceRef {
    return { hex: state.hex, kv: state.kv, ki: state.ki, calibration: state.calibration, fsNum: state.fsNum, fsDen: state.fsDen };
  }

  private state(ref: DeviceRef): DeviceState {
    const s = this.devices.get(ref.hex);
    if (!s) throw new StoreError(`device ${ref.hex} is not attached to this store`);
    return s;
  }

  private updateDeviceInfo(state: DeviceState, identity: DeviceIdentity, nowMs: number): void {
    if (identity.fsNum !== state.fsNum || identity.fsDen !== state.fsDen) {
      // A different sample rate changes the meaning of raw energy: close the segment at the old rate.
      this.flush();
      state.fsNum = identity.fsNum;
      state.fsDen = identity.fsDen;
      state.msPerSample = (1000 * identity.fsDen) / identity.fsNum;
      state.scale = checkScale(state.kv, state.ki, state.fsNum, state.fsDen);
      startSegment(state);
    }
    this.db
      .prepare(
        `UPDATE devices SET fs_num = ?, fs_den = ?, board = ?, adc_part = ?, identify = ?,
           calibration = coalesce(calibration, ?), last_seen_ms = ? WHERE id = ?`,
      )
      .run(
        identity.fsNum, identity.fsDen, identity.board ?? null, identity.adcPart ?? null,
        JSON.stringify(identity.identify ?? null),
        identity.calibration === undefined ? null : JSON.stringify(identity.calibration), nowMs, state.id,
      );
  }

  private openEpoch(state: DeviceState, bootId: number, reason: string, nowMs: number): void {
    this.flush();
    const prev = state.epoch;
    const totalAtStart = prev.id === -1 ? this.readDeviceTotal(state.id) : prev.totalAtStart + prev.nwhBooked;
    const info = this.db
      .prepare(
        `INSERT INTO epochs (device, boot_id, started_ms, scale_kv, scale_ki, total_nwh_at_start, reason)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(state.id, bootId, nowMs, state.kv, state.ki, totalAtStart, reason);
    state.epoch = {
      ...placeholderEpoch(),
      id: Number(info.lastInsertRowid),
      bootId,
      scaleKv: state.kv,
      scaleKi: state.ki,
      totalAtStart,
      lastTms: prev.lastTms,
    };
    this.counters.epochs++;
  }

  private readDeviceTotal(id: number): bigint {
    const row = this.db.prepare('SELECT total_nwh FROM devices WHERE id = ?').safeIntegers(true).get(id) as
      | { total_nwh: bigint }
      | undefined;
    return row?.total_nwh ?? 0n;
  }

  /**
   * Store the calibration in force from now on: the device registers and the front-end scale (volts and amperes
   * per LSB), with the ledger's new scale segment, in one transaction; on any failure nothing changes.
   */
  setCalibration(ref: DeviceRef, registers: CalibrationRegisters, kv: number, ki: number): DeviceRef {
    this.assertWritable();
    const state = this.state(ref);
    const scale = checkScale(kv, ki, state.fsNum, state.fsDen);
    // Everything booked so far at the old scale is written first, so the new segment starts on disk too.
    this.flush();
    const before = { kv: state.kv, ki: state.ki, scale: state.scale, calibration: state.calibration, epoch: { ...state.epoch } };
    state.kv = kv;
    state.ki = ki;
    state.scale = scale;
    state.calibration = { ...registers };
    try {
      this.db.transaction(() => {
        this.db.prepare('UPDATE devices SET kv = ?, ki = ?, calibration = ? WHERE id = ?').run(kv, ki, JSON.stringify(registers), state.id);
        // The change is logged in the same transaction: the log cannot claim one that did not happen, nor miss one.
        this.w.insertEvent.run(state.id, Date.now(), null, 'calibration', JSON.stringify({
          from: { ...before.calibration, kv: before.kv, ki: before.ki }, to: { ...registers, kv, ki },
        }));
        if (state.epoch.id !== -1) {
          startSegment(state);
          this.writes.writeEpoch(state);
        }
      })();
    } catch (err) {
      Object.assign(state, { kv: before.kv, ki: before.ki, scale: before.scale, calibration: before.calibration, epoch: before.epoch });
      throw new StoreError(`could not store the calibration in ${this.path}: ${(err as Error).message}`);
    }
    state.epoch.dirty = false;
    return this.ref(state);
  }

  /**
   * An entry of the event log (schema.ts migration 4), written with the next batch, in its transaction: a device
   * given by hex that is not attached is logged as the host's.
   */
  recordEvent(kind: string, device: string | null, tMs: number, detail: string): void {
    this.assertWritable();
    this.writes.eventQueue.push([device === null ? null : (this.devices.get(device)?.id ?? null), tMs, null, kind, detail]);
    this.writes.armTimer();
  }

  /** A boot_id seen in a status or energy frame: a change means the device reset. */
  noteBoot(ref: DeviceRef, bootId: number, nowMs: number): boolean {
    const state = this.state(ref);
    if (state.epoch.bootId === bootId) return false;
    this.openEpoch(state, bootId, 'boot_id', nowMs);
    return true;
  }

  /**
   * Is this window already stored in the current epoch? Same end and same Σ v·i: after a reset whose identify
   * was missed, a fixed-length window can end at an index the old boot also used, but not with the same sums.
   */
  private isStoredWindow(state: DeviceState, endIndex: bigint, sumVi: bigint): boolean {
    this.flush();
    const row = this.w.windowAt.get(state.id, state.epoch.id, endIndex) as { sum_vi: bigint } | undefined;
    return row !== undefined && row.sum_vi === sumVi;
  }

  /** Book a window. Returns undefined for a duplicate (already stored). */
  addWindow(ref: DeviceRef, win: WindowInput, derived: Derived, nowMs: number): BookedWindow | undefined {
    this.assertWritable();
    const state = this.state(ref);
    checkWindow(win);
    const startIndex = win.end_index - BigInt(win.samples);
    let e = state.epoch;
    if (e.lastEndIndex !== null && startIndex < e.lastEndIndex) {
      if (win.end_index <= e.lastEndIndex && this.isStoredWindow(state, win.end_index, win.sum_vi)) {
        this.counters.duplicates++;
        return undefined;
      }
      // The index went back without a new boot_id (a reset whose identify we missed): a new epoch.
      this.openEpoch(state, e.bootId, 'index_backwards', nowMs);
      e = state.epoch;
    }
    if (e.lastEndIndex !== null && startIndex > e.lastEndIndex) e.discontinuity = true;
    const booked = this.booking.bookWindow(state, win, derived, nowMs);
    // While writes fail, only the timer retries: a flush per window would fail (and cost) per window.
    if (this.writes.windowQueue.length >= this.writes.flushRows && !this.writes.writeHealth.failing) this.flush();
    else this.writes.armTimer();
    return booked;
  }

  /**
   * An accumulator snapshot. Returns the gap booked when the windows did not carry all the energy the
   * accumulator shows, else undefined.
   */
  addEnergy(ref: DeviceRef, snap: EnergyInput, nowMs: number): BookedGap | undefined {
    this.assertWritable();
    const state = this.state(ref);
    if (snap.boot_id !== state.epoch.bootId) this.openEpoch(state, snap.boot_id, 'boot_id', nowMs);
    return this.booking.bookSnapshot(state, snap, nowMs);
  }

  /** Whether database writes get through, and since when (write-health.ts). */
  get health(): WriteHealth {
    return this.writes.writeHealth.health;
  }

  /**
   * False while writes fail and the memory queue is full: the caller drops (and counts) the window rather than
   * book it, and the device's next energy snapshot books its energy as a gap once writes succeed again.
   */
  get hasRoom(): boolean {
    return !this.writes.writeHealth.failing || this.writes.windowQueue.length < MAX_QUEUED_WINDOWS;
  }

  /** Number of windows waiting for the next transaction. */
  get pending(): number {
    return this.writes.windowQueue.length + this.writes.gapQueue.length;
  }

  /** Writes `participant`'s rows in every flush's transaction from now on (see FlushParticipant). */
  addFlushParticipant(participant: FlushParticipant): void {
    this.assertWritable();
    this.writes.participants.push(participant);
  }

  /** A participant has rows waiting: flush within the flush interval even if no window comes. */
  requestFlush(): void {
    this.writes.armTimer();
  }

  /** Write everything queued, the rollups and the ledger in one transaction. */
  flush(): void {
    this.writes.flush();
  }

  /** Delete raw windows and rollups past their retention. Returns rows deleted. */
  applyRetention(nowMs: number): number {
    this.assertWritable();
    this.flush();
    const deleted = deleteExpired(this.db, this.rollups!.packer, this.windowRetentionMs, this.rollupRetentionMs, nowMs);
    for (const dev of this.devices.values()) {
      dev.packCheckedBefore = -Infinity;
      dev.packScanFrom = -Infinity;
    }
    return deleted;
  }

  /** The device's exact energy counter (including what is queued). */
  totalNwh(ref: DeviceRef): bigint {
    const e = this.state(ref).epoch;
    return e.totalAtStart + e.nwhBooked;
  }

  close(): void {
    if (this.writes.closed) return;
    try {
      this.flush();
    } finally {
      this.writes.close();
      this.db.close();
      this.lock?.release();
    }
  }
}
