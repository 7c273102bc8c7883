// The measurement store: devices, energy epochs, windows, gaps and rollups in one SQLite database.
//
// Write path: addWindow/addEnergy update an in-memory ledger per device and queue rows; flush() writes the queue,
// the rollup deltas and the ledger in ONE transaction. A kill -9 therefore loses at most the unflushed queue
// (flushIntervalMs, default 500 ms), and the ledger on disk always matches the rows on disk — so re-ingesting
// the lost frames books them exactly once, and frames already on disk are recognised as duplicates. A flush that
// fails (disk full) rolls back and keeps its batch queued for the next try (write-health.ts).
//
// Epochs: the device's accumulator and sample index restart at a reset. A new boot_id, or a sample index that
// goes backwards, opens a new epoch; the device total carries over, so it never drops at a reset.
//
// Energy: each window books nwh(R + sum_vi) − nwh(R) where R is the epoch's running Σ sum_vi (see energy.ts),
// and each accumulator snapshot is compared with R: what the windows did not carry (lost windows, host
// downtime) is booked as a gap, so the counter equals the device accumulator's delta. Windows and gaps both
// feed the rollups, so Σ rollup energy == Σ window energy + Σ gap energy == counter delta, at every level.

import type Database from 'better-sqlite3';
import {
  checkInt64, checkScale, checkSnapshot, checkWindow, deviceHex, loadLatestEpoch, nwhAt, placeholderEpoch, remember,
  startSegment, timeOf, totalAfter,
} from './ledger.ts';
import type { ProcessLock } from './lock.ts';
import { openDatabase } from './open.ts';
import { deleteExpired } from './retention.ts';
import { LEVEL_MS, Rollups, type RollupBucket } from './rollups.ts';
import { QUANTITIES } from './schema.ts';
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
import { WINDOWS_PER_INSERT, windowInsertSql, WindowRows } from './window-rows.ts';
import { MAX_QUEUED_WINDOWS, RETRY_MS, WriteHealthTracker, type WriteHealth } from './write-health.ts';

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

// addWindow copies the derived values in this order, unrolled for speed: keep it in step with QUANTITIES.
if (QUANTITIES.join() !== 'vrms,irms,p,s,pf,n,freq_hz,v_dc,i_dc') throw new Error('store.ts: QUANTITIES changed, update addWindow');

function setQuantity(values: Float64Array, nulls: Uint8Array, k: number, v: number | null | undefined): void {
  const isNull = v === null || v === undefined;
  nulls[k] = isNull ? 1 : 0;
  values[k] = isNull ? 0 : v;
}

export class Store {
  readonly db: Database.Database;
  readonly path: string;
  readonly counters: StoreCounters = { windows: 0, duplicates: 0, gaps: 0, epochs: 0, flushes: 0, unreconciledSnapshots: 0, clockSteps: 0 };
  private readonly lock: ProcessLock | undefined;
  private readonly devices = new Map<string, DeviceState>();
  private readonly windowQueue: WindowRows;
  private readonly gapQueue: unknown[][] = [];
  /** The parameters of one multi-row windows INSERT, reused: better-sqlite3 keeps nothing of it after run(). */
  private readonly multiRow: unknown[] = new Array<unknown>(WINDOWS_PER_INSERT * (17 + QUANTITIES.length + 1)).fill(null);
  /** One window's quantities (QUANTITIES order) and which of them are null. */
  private readonly values = new Float64Array(QUANTITIES.length);
  private readonly nulls = new Uint8Array(QUANTITIES.length);
  /** Per-window rollup inputs, computed once for all levels (see RollupBucket.addPrepared). */
  private readonly defined = new Uint8Array(QUANTITIES.length);
  private readonly finiteValues = new Float64Array(QUANTITIES.length);
  private readonly weighted = new Float64Array(QUANTITIES.length);
  private readonly dirtyDeviceTotals = new Set<DeviceState>();
  /** Rollups and packs; undefined when read-only. */
  private readonly rollups: Rollups | undefined;
  private readonly flushIntervalMs: number;
  private readonly flushRows: number;
  private readonly reanchorMs: number;
  private readonly windowRetentionMs: number | null;
  private readonly rollupRetentionMs: Partial<Record<string, number | null>>;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly onWarning: (message: string) => void;
  private readonly writeHealth: WriteHealthTracker;
  private readonly stmts;
  /** The batch write, wrapped once: a fresh closure per flush would throw away its optimised code each time. */
  private readonly writeTx: ((...batch: Parameters<Store['writeBatch']>) => void) | undefined;

  private constructor(path: string, options: StoreOptions) {
    this.path = path;
    this.flushIntervalMs = options.flushIntervalMs ?? 500;
    this.flushRows = options.flushRows ?? 4096;
    // Sized for a whole batch up front: growing it mid-ingest costs a copy and a stall.
    this.windowQueue = new WindowRows(QUANTITIES.length, options.readonly ? 1 : Math.min(this.flushRows, 65_536));
    this.reanchorMs = options.reanchorMs ?? 2000;
    this.windowRetentionMs = options.windowRetentionMs === undefined ? 14 * 86_400_000 : options.windowRetentionMs;
    this.rollupRetentionMs = options.rollupRetentionMs ?? {};
    this.onWarning = options.onWarning ?? ((message) => process.emitWarning(message, 'CrabwattStoreWarning'));
    this.writeHealth = new WriteHealthTracker(
      path,
      options.onWriteHealth ?? ((h) => process.emitWarning(h.state === 'ok' ? `${path}: writing again` : h.detail, 'CrabwattStoreWarning')),
      Date.now(),
    );
    const readonly = options.readonly ?? false;
    const { db, lock } = openDatabase(path, options);
    this.db = db;
    this.lock = lock;
    this.stmts = readonly ? undefined : this.prepareWriteStatements();
    this.rollups = readonly ? undefined : new Rollups(this.db);
    this.writeTx = readonly ? undefined : this.db.transaction((...batch: Parameters<Store['writeBatch']>) => this.writeBatch(...batch));
  }

  static open(path: string, options: StoreOptions = {}): Store {
    return new Store(path, options);
  }

  private prepareWriteStatements() {
    const db = this.db;
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
      updateDeviceTotal: db.prepare('UPDATE devices SET total_nwh = ?, last_seen_ms = ? WHERE id = ?'),
      windowAt: db.prepare('SELECT sum_vi FROM windows WHERE device = ? AND epoch = ? AND end_index = ?').safeIntegers(true),
    };
  }

  private get w() {
    this.assertWritable();
    return this.stmts!;
  }

  private assertWritable(): void {
    if (!this.stmts) throw new StoreError('the store is open read-only');
    if (this.closed) throw new StoreError('the store is closed');
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
        if (state.epoch.id !== -1) {
          startSegment(state);
          this.writeEpoch(state);
        }
      })();
    } catch (err) {
      Object.assign(state, { kv: before.kv, ki: before.ki, scale: before.scale, calibration: before.calibration, epoch: before.epoch });
      throw new StoreError(`could not store the calibration in ${this.path}: ${(err as Error).message}`);
    }
    state.epoch.dirty = false;
    return this.ref(state);
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
    const t = timeOf(state, win.end_index, nowMs, this.reanchorMs, this.counters);
    const rawAfter = e.rawBooked + win.sum_vi;
    // Invariant: nwhBooked == nwhAt(rawBooked), so one conversion per window suffices.
    const nwh = checkInt64('energy_nwh', nwhAt(state, rawAfter) - e.nwhBooked);
    totalAfter(e, nwh);
    e.rawBooked = rawAfter;
    e.nwhBooked += nwh;
    e.lastEndIndex = win.end_index;
    e.firstEndIndex ??= win.end_index;
    e.lastTms = t;
    remember(e, win.end_index, rawAfter);
    e.dirty = true;
    this.dirtyDeviceTotals.add(state);

    // Typed scratch rather than an array of number | null, whose every double would be boxed on the heap.
    const values = this.values;
    const nulls = this.nulls;
    setQuantity(values, nulls, 0, derived.vrms);
    setQuantity(values, nulls, 1, derived.irms);
    setQuantity(values, nulls, 2, derived.p);
    setQuantity(values, nulls, 3, derived.s);
    setQuantity(values, nulls, 4, derived.pf);
    setQuantity(values, nulls, 5, derived.n);
    setQuantity(values, nulls, 6, derived.freq_hz);
    setQuantity(values, nulls, 7, derived.v_dc);
    setQuantity(values, nulls, 8, derived.i_dc);
    this.windowQueue.push(state.id, e.id, win, t, values, nulls, nwh);
    const samples = win.samples;
    for (let k = 0; k < values.length; k++) {
      const v = values[k]!;
      const ok = nulls[k] === 0 && Number.isFinite(v);
      this.defined[k] = ok ? 1 : 0;
      this.finiteValues[k] = ok ? v : 0;
      this.weighted[k] = ok ? v * samples : 0;
    }
    const nwhNumber = Number(nwh);
    for (let level = 0; level < LEVEL_MS.length; level++) {
      this.rollups!.bucketFor(state, level, t - 1).addPrepared(samples, nwh, nwhNumber, win.flags, this.defined, this.finiteValues, this.weighted);
    }
    this.counters.windows++;
    const booked: BookedWindow = {
      device: state.hex, epoch: e.id, end_index: win.end_index, t_end_ms: t, energy_nwh: nwh,
      total_nwh: e.totalAtStart + e.nwhBooked,
    };
    // While writes fail, only the timer retries: a flush per window would fail (and cost) per window.
    if (this.windowQueue.length >= this.flushRows && !this.writeHealth.failing) this.flush();
    else this.armTimer();
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
    const e = state.epoch;
    const x = snap.end_index;
    if (e.lastEnergyIndex !== null && x <= e.lastEnergyIndex) {
      // An old snapshot of the same boot: a repeat or a replay, never news. (A reset carries a new boot_id in
      // this very frame, and a missed one shows first in the windows, whose index then goes back.)
      if (!(x === e.lastEnergyIndex && snap.energy === e.lastEnergy)) this.counters.unreconciledSnapshots++;
      return undefined;
    }
    checkSnapshot(e, snap);
    // Where does R stand at x?
    let rawAtX: bigint;
    let beyond = false;
    if (e.lastEndIndex === null || x >= e.lastEndIndex) {
      rawAtX = e.rawBooked;
      beyond = e.lastEndIndex === null || x > e.lastEndIndex;
    } else {
      const hit = e.recent.find((r) => r.endIndex === x);
      if (!hit) {
        this.counters.unreconciledSnapshots++;
        return undefined;
      }
      rawAtX = hit.raw;
    }
    e.lastEnergy = snap.energy;
    e.lastEnergyIndex = x;
    e.dirty = true;
    if (e.energyBase === null) {
      // First snapshot of the epoch: energy before what we have seen is not ours to count.
      e.energyBase = snap.energy - rawAtX;
      if (beyond) this.advanceTo(state, x, nowMs);
      return undefined;
    }
    const missing = snap.energy - e.energyBase - rawAtX;
    let gap: BookedGap | undefined;
    if (missing !== 0n) {
      const t = beyond ? timeOf(state, x, nowMs, this.reanchorMs, this.counters) : (e.lastTms ?? nowMs);
      const nwh = checkInt64('energy_nwh', nwhAt(state, e.rawBooked + missing) - e.nwhBooked);
      totalAfter(e, nwh);
      e.rawBooked += missing;
      e.nwhBooked += nwh;
      for (const r of e.recent) if (r.endIndex >= x) r.raw += missing;
      const reason = beyond || e.discontinuity ? 'windows_lost' : 'mismatch';
      this.gapQueue.push([state.id, e.id, x, t, missing.toString(), nwh, reason]);
      for (let level = 0; level < LEVEL_MS.length; level++) this.rollups!.bucketFor(state, level, t - 1).addEnergy(nwh);
      this.dirtyDeviceTotals.add(state);
      this.counters.gaps++;
      gap = { device: state.hex, epoch: e.id, at_index: x, t_ms: t, raw: missing, energy_nwh: nwh, total_nwh: e.totalAtStart + e.nwhBooked };
      this.armTimer();
    }
    if (beyond) this.advanceTo(state, x, nowMs);
    if (x >= (e.lastEndIndex ?? x)) e.discontinuity = false;
    return gap;
  }

  /** Windows before x will not come any more (the snapshot is past them): later windows start at x or after. */
  private advanceTo(state: DeviceState, x: bigint, nowMs: number): void {
    const e = state.epoch;
    e.lastTms = timeOf(state, x, nowMs, this.reanchorMs, this.counters);
    e.lastEndIndex = x;
    e.firstEndIndex ??= x;
    remember(e, x, e.rawBooked);
    e.dirty = true;
  }

  private armTimer(): void {
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

  /** Whether database writes get through, and since when (write-health.ts). */
  get health(): WriteHealth {
    return this.writeHealth.health;
  }

  /**
   * False while writes fail and the memory queue is full: the caller drops (and counts) the window rather than
   * book it, and the device's next energy snapshot books its energy as a gap once writes succeed again.
   */
  get hasRoom(): boolean {
    return !this.writeHealth.failing || this.windowQueue.length < MAX_QUEUED_WINDOWS;
  }

  /** Number of windows waiting for the next transaction. */
  get pending(): number {
    return this.windowQueue.length + this.gapQueue.length;
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
    if (this.windowQueue.length === 0 && this.gapQueue.length === 0 && this.rollups.queue.length === 0 && openBuckets.length === 0 && dirtyEpochs.length === 0) return;
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
    this.dirtyDeviceTotals.clear();
    for (const dev of dirtyEpochs) dev.epoch.dirty = false;
    // The open buckets keep collecting, now as additions to what was just written.
    for (const b of openBuckets) b.reset();
    for (const b of this.rollups.queue.splice(0)) this.rollups.recycle(b);
    this.counters.flushes++;
    this.writeHealth.succeeded(nowMs);
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
    for (const b of rollups) this.rollups!.writeBucket(b);
    this.rollups!.packClosedHours(this.devices);
    for (const dev of dirtyEpochs) this.writeEpoch(dev);
    for (const dev of totals) s.updateDeviceTotal.run(dev.epoch.totalAtStart + dev.epoch.nwhBooked, nowMs, dev.id);
  }

  private writeEpoch(dev: DeviceState): void {
    const e = dev.epoch;
    this.stmts!.updateEpoch.run(
      e.anchorIndex, e.anchorMs, e.firstEndIndex, e.lastEndIndex, e.lastTms, e.rawBooked.toString(),
      e.energyBase?.toString() ?? null, e.lastEnergy?.toString() ?? null, e.lastEnergyIndex, e.scaleKv, e.scaleKi,
      e.segRaw.toString(), e.segNwh, e.nwhBooked, e.id,
    );
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
    if (this.closed) return;
    try {
      this.flush();
    } finally {
      this.closed = true;
      if (this.timer) clearTimeout(this.timer);
      this.db.close();
      this.lock?.release();
    }
  }
}
