// The measurement store: devices, energy epochs, windows, gaps and rollups in one SQLite database.
//
// Write path: addWindow/addEnergy update an in-memory ledger per device and queue rows; flush() writes the queue,
// the rollup deltas and the ledger in ONE transaction. A kill -9 therefore loses at most the unflushed queue
// (flushIntervalMs, default 500 ms), and the ledger on disk always matches the rows on disk — so re-ingesting
// the lost frames books them exactly once, and frames already on disk are recognised as duplicates.
//
// Epochs: the device's accumulator and sample index restart at a reset. A new boot_id, or a sample index that
// goes backwards, opens a new epoch; the device total carries over, so it never drops at a reset.
//
// Energy: each window books nwh(R + sum_vi) − nwh(R) where R is the epoch's running Σ sum_vi (see energy.ts),
// and each accumulator snapshot is compared with R: what the windows did not carry (lost windows, host
// downtime) is booked as a gap, so the counter equals the device accumulator's delta. Windows and gaps both
// feed the rollups, so Σ rollup energy == Σ window energy + Σ gap energy == counter delta, at every level.

import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { energyNanoWattHours, validateScale, type DeriveScale } from '../dsp/derive.ts';
import { Bucket, statsBlob, statsInto } from './fold.ts';
import { acquireLock, databaseLockPath, type ProcessLock } from './lock.ts';
import { PACK_MS, PACKED_LEVEL_MS, Packer } from './pack.ts';
import { migrate, QUANTITIES, ROLLUP_LEVELS, SCHEMA_VERSION, SchemaTooNewError, type Quantity } from './schema.ts';
import { WindowRows } from './window-rows.ts';

export class StoreError extends Error {
  override readonly name = 'StoreError';
}

export interface StoreOptions {
  /** Take the single-writer lock (default true). Readers (export) pass false. */
  lock?: boolean;
  readonly?: boolean;
  /** Longest time a window waits in memory before its transaction (default 500 ms). */
  flushIntervalMs?: number;
  /** Queue length that triggers an immediate flush (default 4096 windows). */
  flushRows?: number;
  /** Re-map device time to wall time when they drift apart by more than this (default 2000 ms). */
  reanchorMs?: number;
  /** Retention of raw windows in ms (default 14 days); null keeps them forever. */
  windowRetentionMs?: number | null;
  /** Retention per rollup level name in ms; absent or null keeps that level forever. */
  rollupRetentionMs?: Partial<Record<string, number | null>>;
  /** A timed flush that failed (disk full, I/O error): the batch is dropped, the ledger reloaded. */
  onFlushError?: (err: Error) => void;
}

export interface DeviceIdentity {
  /** The identify frame's device_id. */
  deviceId: bigint;
  bootId: number;
  fsNum: number;
  fsDen: number;
  board?: number;
  adcPart?: number;
  /** The identify frame, JSON-able (bigints already converted). */
  identify?: unknown;
  calibration?: unknown;
  /** Scale used when the device is new (volts and amperes per ADC LSB). */
  defaultKv: number;
  defaultKi: number;
  name?: string;
}

export interface WindowInput {
  end_index: bigint;
  samples: number;
  sum_v: bigint;
  sum_i: bigint;
  sum_vv: bigint;
  sum_ii: bigint;
  sum_vi: bigint;
  min_v: number;
  max_v: number;
  min_i: number;
  max_i: number;
  zc_count: number;
  flags: number;
  config_seq: number;
}

export type Derived = Record<Quantity, number | null>;

export interface EnergyInput {
  end_index: bigint;
  energy: bigint;
  boot_id: number;
}

export interface BookedWindow {
  device: string;
  epoch: number;
  end_index: bigint;
  t_end_ms: number;
  energy_nwh: bigint;
  total_nwh: bigint;
}

export interface BookedGap {
  device: string;
  epoch: number;
  at_index: bigint;
  t_ms: number;
  raw: bigint;
  energy_nwh: bigint;
  total_nwh: bigint;
}

export interface StoreCounters {
  windows: number;
  duplicates: number;
  gaps: number;
  epochs: number;
  flushes: number;
  unreconciledSnapshots: number;
}

interface EpochState {
  id: number;
  bootId: number;
  anchorIndex: bigint | null;
  anchorMs: number | null;
  firstEndIndex: bigint | null;
  lastEndIndex: bigint | null;
  lastTms: number | null;
  rawBooked: bigint;
  energyBase: bigint | null;
  lastEnergy: bigint | null;
  lastEnergyIndex: bigint | null;
  scaleKv: number;
  scaleKi: number;
  segRaw: bigint;
  segNwh: bigint;
  nwhBooked: bigint;
  totalAtStart: bigint;
  /** Recent (end_index, R after it), to reconcile a snapshot taken a few windows back. Not persisted. */
  recent: { endIndex: bigint; raw: bigint }[];
  /** A window started after the last one ended since the last reconciled snapshot (lost windows). */
  discontinuity: boolean;
  dirty: boolean;
}

interface DeviceState {
  id: number;
  hex: string;
  kv: number;
  ki: number;
  fsNum: number;
  fsDen: number;
  /** ms per sample as a float, only for the wall-time mapping (energy never uses it). */
  msPerSample: number;
  scale: DeriveScale;
  /** The rollup bucket each level is filling now: windows arrive in time order, so almost every window lands there. */
  open: RollupBucket[];
  epoch: EpochState;
  /** Hours before this were looked at for packing (see packClosedHours). */
  packCheckedBefore: number;
  /** The last look found as many unpacked hours as one batch packs: there may be more. */
  packBackfill: boolean;
  /** Hours before this have packs (or no data): the next look starts here, not at the oldest hour. */
  packScanFrom: number;
}

/** A rollup bucket's additions since the last flush. */
class RollupBucket extends Bucket {
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

const LEVEL_MS: readonly number[] = ROLLUP_LEVELS.map((l) => l.ms);
// addWindow copies the derived values in this order, unrolled for speed: keep it in step with QUANTITIES.
if (QUANTITIES.join() !== 'vrms,irms,p,s,pf,n,freq_hz,v_dc,i_dc') throw new Error('store.ts: QUANTITIES changed, update addWindow');

/** An opaque handle for a device attached to the store. */
export interface DeviceRef {
  readonly hex: string;
  readonly kv: number;
  readonly ki: number;
  readonly fsNum: number;
  readonly fsDen: number;
}

const RECENT_WINDOWS = 256;

/**
 * Closed hours packed per batch at most (pack.ts). A new hour closes once an hour; more than one to pack means
 * a backlog (a database from before the packs, hours left open by a restart), worked off a few per batch so
 * that no batch stalls ingest: an hour costs ~10 ms.
 */
const PACK_HOURS_PER_BATCH = 4;

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
const INT64_MAX = (1n << 63n) - 1n;
const INT64_MIN = -(1n << 63n);

/** The scale for the energy conversion; throws StoreError for a non-positive or non-finite one. */
export function checkScale(kv: number, ki: number, fsNum: number, fsDen: number): DeriveScale {
  if (!Number.isSafeInteger(fsNum) || !Number.isSafeInteger(fsDen) || fsNum <= 0 || fsDen <= 0) {
    throw new StoreError(`sample rate must be a positive rational, got ${fsNum}/${fsDen}`);
  }
  const scale = { kv, ki, fs: fsNum / fsDen };
  try {
    validateScale(scale);
  } catch (err) {
    throw new StoreError((err as Error).message);
  }
  return scale;
}

function setQuantity(values: Float64Array, nulls: Uint8Array, k: number, v: number | null | undefined): void {
  const isNull = v === null || v === undefined;
  nulls[k] = isNull ? 1 : 0;
  values[k] = isNull ? 0 : v;
}

/** Keep the last RECENT_WINDOWS (end_index, R) pairs; trimmed in bulk so that each push costs O(1). */
function remember(e: EpochState, endIndex: bigint, raw: bigint): void {
  e.recent.push({ endIndex, raw });
  if (e.recent.length > 2 * RECENT_WINDOWS) e.recent.splice(0, e.recent.length - RECENT_WINDOWS);
}

export function deviceHex(deviceId: bigint): string {
  return deviceId.toString(16).padStart(16, '0');
}

function checkInt64(name: string, value: bigint): bigint {
  if (typeof value !== 'bigint') throw new StoreError(`${name} must be a bigint, got ${typeof value}`);
  if (value > INT64_MAX || value < INT64_MIN) throw new StoreError(`${name} = ${value} does not fit in 64 bits`);
  return value;
}

export class Store {
  readonly db: Database.Database;
  readonly path: string;
  readonly counters: StoreCounters = { windows: 0, duplicates: 0, gaps: 0, epochs: 0, flushes: 0, unreconciledSnapshots: 0 };
  private readonly lock: ProcessLock | undefined;
  private readonly devices = new Map<string, DeviceState>();
  private readonly windowQueue: WindowRows;
  private readonly gapQueue: unknown[][] = [];
  /** Buckets left behind by the time (no window will come for them from this process), not yet written. */
  private readonly rollupQueue: RollupBucket[] = [];
  /** The parameters of one multi-row windows INSERT, reused: better-sqlite3 keeps nothing of it after run(). */
  private readonly multiRow: unknown[] = new Array<unknown>(WINDOWS_PER_INSERT * (17 + QUANTITIES.length + 1)).fill(null);
  /** One window's quantities (QUANTITIES order) and which of them are null. */
  private readonly values = new Float64Array(QUANTITIES.length);
  private readonly nulls = new Uint8Array(QUANTITIES.length);
  /** Per-window rollup inputs, computed once for all levels (see RollupBucket.addPrepared). */
  private readonly defined = new Uint8Array(QUANTITIES.length);
  private readonly finiteValues = new Float64Array(QUANTITIES.length);
  private readonly weighted = new Float64Array(QUANTITIES.length);
  /** Written buckets, reset, for reuse: at fast ingest a bucket per window would churn the GC. */
  private readonly bucketPool: RollupBucket[] = [];
  private readonly dirtyDeviceTotals = new Set<DeviceState>();
  private readonly packer: Packer | undefined;
  /** Per device id, the end of its latest packed hour: a 1 s bucket written before it invalidates its hour's pack. */
  private readonly packedBefore = new Map<number, number>();
  /** A pack was dropped: look for unpacked hours from the oldest again. */
  private packRescan = false;
  private readonly flushIntervalMs: number;
  private readonly flushRows: number;
  private readonly reanchorMs: number;
  private readonly windowRetentionMs: number | null;
  private readonly rollupRetentionMs: Partial<Record<string, number | null>>;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly onFlushError: (err: Error) => void;
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
    this.onFlushError = options.onFlushError ?? ((err) => process.emitWarning(err.message, 'CrabwattStoreWarning'));
    const readonly = options.readonly ?? false;
    try {
      if (!readonly) mkdirSync(dirname(resolve(path)), { recursive: true });
      this.lock = options.lock === false || readonly ? undefined : acquireLock(databaseLockPath(path), `database ${path}`);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS' || code === 'ENOTDIR' || code === 'EEXIST') {
        throw new StoreError(`cannot write next to ${path} (${code}): choose a writable place with --db FILE`);
      }
      throw err;
    }
    try {
      this.db = new Database(path, { readonly, fileMustExist: readonly });
      this.db.pragma('busy_timeout = 5000');
      if (!readonly) {
        this.db.pragma('journal_mode = WAL');
        // NORMAL in WAL mode: a commit is durable against process death (kill -9); only an OS crash or power
        // loss can drop the last transactions, and never corrupts.
        this.db.pragma('synchronous = NORMAL');
        migrate(this.db);
      } else {
        const version = Number(this.db.pragma('user_version', { simple: true }));
        // A reader reads every schema from 1 on (an older one has no packs: its rows are read instead).
        if (version < 1 || version > SCHEMA_VERSION) {
          throw new StoreError(
            `database ${path} has schema version ${version}, this crabwatt reads ${SCHEMA_VERSION}: ` +
              (version < SCHEMA_VERSION ? 'run `crabwatt serve` on it once to upgrade it' : 'upgrade crabwatt'),
          );
        }
      }
    } catch (err) {
      this.lock?.release();
      (this as { db?: Database.Database }).db?.close();
      const code = (err as { code?: string }).code;
      if (readonly && code === 'SQLITE_CANTOPEN') {
        throw new StoreError(`cannot open database ${path}: no such file (run \`crabwatt serve --db ${path}\` first)`);
      }
      if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
        throw new StoreError(`${path} is not a crabwatt database or is damaged (${(err as Error).message}): move it aside or choose another --db`);
      }
      if (err instanceof SchemaTooNewError) throw new StoreError(err.message);
      throw err;
    }
    this.stmts = readonly ? undefined : this.prepareWriteStatements();
    this.packer = readonly ? undefined : new Packer(this.db);
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
      rollupAt: db
        .prepare('SELECT samples, windows, energy_nwh, flags, stats FROM rollups WHERE device = ? AND level = ? AND t_start_ms = ?')
        .safeIntegers(true)
        .raw(true),
      putRollup: db.prepare(
        'INSERT OR REPLACE INTO rollups (device, level, t_start_ms, samples, windows, energy_nwh, flags, stats) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
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
    let row = this.db
      .prepare('SELECT id, kv, ki, fs_num, fs_den, total_nwh FROM devices WHERE device_id = ?')
      .safeIntegers(true)
      .get(hex) as { id: bigint; kv: number; ki: number; fs_num: bigint; fs_den: bigint; total_nwh: bigint } | undefined;
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
      row = this.db
        .prepare('SELECT id, kv, ki, fs_num, fs_den, total_nwh FROM devices WHERE device_id = ?')
        .safeIntegers(true)
        .get(hex) as typeof row;
    }
    const r = row!;
    const fsNum = identity.fsNum;
    const fsDen = identity.fsDen;
    const epoch = this.loadLatestEpoch(Number(r.id));
    const state: DeviceState = {
      id: Number(r.id),
      hex,
      kv: r.kv,
      ki: r.ki,
      fsNum,
      fsDen,
      msPerSample: (1000 * fsDen) / fsNum,
      scale: checkScale(r.kv, r.ki, fsNum, fsDen),
      open: [],
      epoch: epoch ?? this.placeholderEpoch(),
      packCheckedBefore: -Infinity,
      packBackfill: false,
      packScanFrom: -Infinity,
    };
    const lastPack = this.db.prepare('SELECT max(t_start_ms) FROM rollup_packs WHERE device = ?').pluck().get(state.id) as number | null;
    if (lastPack !== null) this.packedBefore.set(state.id, lastPack + PACK_MS);
    this.devices.set(hex, state);
    this.updateDeviceInfo(state, identity, nowMs);
    if (!epoch) this.openEpoch(state, identity.bootId, 'first', nowMs);
    else if (epoch.bootId !== identity.bootId) this.openEpoch(state, identity.bootId, 'boot_id', nowMs);
    else if (epoch.scaleKv !== state.kv || epoch.scaleKi !== state.ki) this.startSegment(state);
    return this.ref(state);
  }

  private placeholderEpoch(): EpochState {
    return {
      id: -1, bootId: -1, anchorIndex: null, anchorMs: null, firstEndIndex: null, lastEndIndex: null, lastTms: null,
      rawBooked: 0n, energyBase: null, lastEnergy: null, lastEnergyIndex: null, scaleKv: 0, scaleKi: 0,
      segRaw: 0n, segNwh: 0n, nwhBooked: 0n, totalAtStart: 0n, recent: [], discontinuity: false, dirty: false,
    };
  }

  private ref(state: DeviceState): DeviceRef {
    return { hex: state.hex, kv: state.kv, ki: state.ki, fsNum: state.fsNum, fsDen: state.fsDen };
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
      this.startSegment(state);
    }
    this.db
      .prepare(
        `UPDATE devices SET fs_num = ?, fs_den = ?, board = ?, adc_part = ?, identify = ?,
           calibration = coalesce(?, calibration), last_seen_ms = ? WHERE id = ?`,
      )
      .run(
        identity.fsNum, identity.fsDen, identity.board ?? null, identity.adcPart ?? null,
        JSON.stringify(identity.identify ?? null),
        identity.calibration === undefined ? null : JSON.stringify(identity.calibration), nowMs, state.id,
      );
  }

  private loadLatestEpoch(deviceId: number): EpochState | undefined {
    const row = this.db
      .prepare('SELECT * FROM epochs WHERE device = ? ORDER BY id DESC LIMIT 1')
      .safeIntegers(true)
      .get(deviceId) as Record<string, bigint | string | number | null> | undefined;
    if (!row) return undefined;
    const big = (v: unknown): bigint | null => (v === null || v === undefined ? null : BigInt(v as bigint | string));
    const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
    return {
      id: Number(row['id']),
      bootId: Number(row['boot_id']),
      anchorIndex: big(row['anchor_index']),
      anchorMs: num(row['anchor_ms']),
      firstEndIndex: big(row['first_end_index']),
      lastEndIndex: big(row['last_end_index']),
      lastTms: num(row['last_t_ms']),
      rawBooked: BigInt(row['raw_booked'] as string),
      energyBase: big(row['energy_base']),
      lastEnergy: big(row['last_energy']),
      lastEnergyIndex: big(row['last_energy_index']),
      scaleKv: Number(row['scale_kv']),
      scaleKi: Number(row['scale_ki']),
      segRaw: BigInt(row['seg_raw'] as string),
      segNwh: BigInt(row['seg_nwh'] as bigint),
      nwhBooked: BigInt(row['nwh_booked'] as bigint),
      totalAtStart: BigInt(row['total_nwh_at_start'] as bigint),
      recent: [],
      discontinuity: false,
      dirty: false,
    };
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
      ...this.placeholderEpoch(),
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

  /** Energy booked for the epoch when its running raw sum is `raw`. */
  private nwhAt(state: DeviceState, raw: bigint): bigint {
    const e = state.epoch;
    return e.segNwh + energyNanoWattHours(raw - e.segRaw, state.scale);
  }

  /** A scale change takes effect from the current raw position: energy already booked stays as booked. */
  private startSegment(state: DeviceState): void {
    const e = state.epoch;
    e.segRaw = e.rawBooked;
    e.segNwh = e.nwhBooked;
    e.scaleKv = state.kv;
    e.scaleKi = state.ki;
    e.dirty = true;
  }

  /** Change the front-end scale (volts and amperes per LSB) of a device from now on. */
  setScale(ref: DeviceRef, kv: number, ki: number): DeviceRef {
    const state = this.state(ref);
    const scale = checkScale(kv, ki, state.fsNum, state.fsDen);
    this.flush();
    state.kv = kv;
    state.ki = ki;
    state.scale = scale;
    this.db.prepare('UPDATE devices SET kv = ?, ki = ? WHERE id = ?').run(kv, ki, state.id);
    if (state.epoch.id !== -1) this.startSegment(state);
    this.flush();
    return this.ref(state);
  }

  /** A boot_id seen in a status or energy frame: a change means the device reset. */
  noteBoot(ref: DeviceRef, bootId: number, nowMs: number): boolean {
    const state = this.state(ref);
    if (state.epoch.bootId === bootId) return false;
    this.openEpoch(state, bootId, 'boot_id', nowMs);
    return true;
  }

  private timeOf(state: DeviceState, index: bigint, nowMs: number): number {
    const e = state.epoch;
    if (e.anchorIndex === null || e.anchorMs === null) {
      e.anchorIndex = index;
      e.anchorMs = Math.max(nowMs, e.lastTms ?? -Infinity);
    }
    let t = Math.round(e.anchorMs + Number(index - e.anchorIndex) * state.msPerSample);
    if (Math.abs(t - nowMs) > this.reanchorMs) {
      // The device clock and the host clock drift apart (crystal tolerance, host downtime): follow the host.
      e.anchorIndex = index;
      e.anchorMs = Math.max(nowMs, e.lastTms ?? -Infinity);
      t = e.anchorMs;
    }
    return Math.max(t, e.lastTms ?? -Infinity);
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
    const startIndex = win.end_index - BigInt(win.samples);
    if (win.samples <= 0 || startIndex < 0n) throw new StoreError(`window ending at ${win.end_index} has ${win.samples} samples`);
    // Every 64-bit column is checked before anything is booked: the i64 sums fit by their wire type and the u64
    // ones from a conforming device (Σ v² ≤ 2^54), but the queue's BigInt64Array would wrap a wider value.
    checkInt64('end_index', win.end_index);
    checkInt64('sum_v', win.sum_v);
    checkInt64('sum_i', win.sum_i);
    checkInt64('sum_vv', win.sum_vv);
    checkInt64('sum_ii', win.sum_ii);
    checkInt64('sum_vi', win.sum_vi);
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
    const t = this.timeOf(state, win.end_index, nowMs);
    const rawAfter = e.rawBooked + win.sum_vi;
    // Invariant: nwhBooked == nwhAt(rawBooked), so one conversion per window suffices.
    const nwh = checkInt64('energy_nwh', this.nwhAt(state, rawAfter) - e.nwhBooked);
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
      this.bucketFor(state, level, t - 1).addPrepared(samples, nwh, nwhNumber, win.flags, this.defined, this.finiteValues, this.weighted);
    }
    this.counters.windows++;
    const booked: BookedWindow = {
      device: state.hex, epoch: e.id, end_index: win.end_index, t_end_ms: t, energy_nwh: nwh,
      total_nwh: e.totalAtStart + e.nwhBooked,
    };
    if (this.windowQueue.length >= this.flushRows) this.flush();
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
      const t = beyond ? this.timeOf(state, x, nowMs) : (e.lastTms ?? nowMs);
      const nwh = this.nwhAt(state, e.rawBooked + missing) - e.nwhBooked;
      e.rawBooked += missing;
      e.nwhBooked += nwh;
      for (const r of e.recent) if (r.endIndex >= x) r.raw += missing;
      const reason = beyond || e.discontinuity ? 'windows_lost' : 'mismatch';
      this.gapQueue.push([state.id, e.id, x, t, missing.toString(), nwh, reason]);
      for (let level = 0; level < LEVEL_MS.length; level++) this.bucketFor(state, level, t - 1).addEnergy(nwh);
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
    e.lastTms = this.timeOf(state, x, nowMs);
    e.lastEndIndex = x;
    e.firstEndIndex ??= x;
    remember(e, x, e.rawBooked);
    e.dirty = true;
  }

  /** The bucket of a level that holds instant tMs; the open one is retired to the queue when time moved on. */
  private bucketFor(state: DeviceState, level: number, tMs: number): RollupBucket {
    const ms = LEVEL_MS[level]!;
    const start = Math.floor(tMs / ms) * ms;
    const open = state.open[level];
    if (open && open.tStartMs === start) return open;
    if (open && open.rows > 0) this.rollupQueue.push(open);
    const fresh = this.bucketPool.pop() ?? new RollupBucket();
    fresh.device = state.id;
    fresh.levelMs = ms;
    fresh.tStartMs = start;
    state.open[level] = fresh;
    return fresh;
  }

  /** Merge a bucket's additions into its stored row (read, fold, replace: SQL cannot fold the stats BLOB). */
  private writeBucket(b: RollupBucket): void {
    b.settle();
    const s = this.stmts!;
    // Times are monotone (timeOf), so a packed hour gets no more buckets as a rule; one that does all the same (a
    // late window, a gap booked at an old time, a clock or a database tampered with) turns the hour back into
    // rows first, so the merge below sees the stored bucket, and the backfill packs the hour again later.
    if (b.levelMs === PACKED_LEVEL_MS && b.tStartMs < (this.packedBefore.get(b.device) ?? -Infinity)) {
      this.packer!.unpackHour(b.device, Math.floor(b.tStartMs / PACK_MS) * PACK_MS);
      this.packRescan = true;
    }
    const existing = s.rollupAt.get(b.device, b.levelMs, b.tStartMs) as [bigint, bigint, bigint, bigint, Uint8Array] | undefined;
    if (existing) {
      const row = {
        tMs: b.tStartMs, samples: Number(existing[0]), windows: Number(existing[1]), energyNwh: existing[2], flags: Number(existing[3]),
        wsum: new Float64Array(QUANTITIES.length), weight: new Float64Array(QUANTITIES.length),
        min: new Float64Array(QUANTITIES.length), max: new Float64Array(QUANTITIES.length),
      };
      statsInto(existing[4], row);
      b.add(row);
    }
    s.putRollup.run(b.device, b.levelMs, b.tStartMs, b.samples, b.windows, b.energyNwh, b.flags, statsBlob(b));
  }

  private armTimer(): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      try {
        this.flush();
      } catch (err) {
        // No caller to throw to from a timer: report, and keep the process (and the device link) alive.
        this.onFlushError(err as Error);
      }
    }, this.flushIntervalMs);
    this.timer.unref?.();
  }

  /** Number of windows waiting for the next transaction. */
  get pending(): number {
    return this.windowQueue.length + this.gapQueue.length;
  }

  /** Write everything queued, the rollups and the ledger in one transaction. */
  flush(): void {
    if (!this.stmts || this.closed) return;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const dirtyEpochs = [...this.devices.values()].filter((d) => d.epoch.dirty && d.epoch.id !== -1);
    const openBuckets = [...this.devices.values()].flatMap((d) => d.open.filter((b) => b.rows > 0));
    if (this.windowQueue.length === 0 && this.gapQueue.length === 0 && this.rollupQueue.length === 0 && openBuckets.length === 0 && dirtyEpochs.length === 0) return;
    const windows = this.windowQueue.length;
    // Taken off the queue now, as a whole: written in this transaction or, if it fails, dropped.
    this.windowQueue.length = 0;
    const gaps = this.gapQueue.splice(0);
    const retired = this.rollupQueue.splice(0);
    const rollups = retired.concat(openBuckets);
    const totals = [...this.dirtyDeviceTotals];
    this.dirtyDeviceTotals.clear();
    const nowMs = Date.now();
    try {
      this.writeTx!(windows, gaps, rollups, dirtyEpochs, totals, nowMs);
    } catch (err) {
      // The memory ledger ran ahead of the database: reload it so both agree again (the batch is lost, never
      // half-written or double-booked).
      for (const dev of this.devices.values()) {
        const epoch = this.loadLatestEpoch(dev.id);
        if (epoch) dev.epoch = epoch;
        dev.open = [];
        dev.packCheckedBefore = -Infinity;
        dev.packScanFrom = -Infinity;
      }
      throw new StoreError(`could not write to ${this.path}: ${(err as Error).message}`);
    }
    for (const dev of dirtyEpochs) dev.epoch.dirty = false;
    // The open buckets keep collecting, now as additions to what was just written.
    for (const b of openBuckets) b.reset();
    for (const b of retired) {
      b.reset();
      if (this.bucketPool.length < 4096) this.bucketPool.push(b);
    }
    this.counters.flushes++;
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
    for (const b of rollups) this.writeBucket(b);
    this.packClosedHours();
    for (const dev of dirtyEpochs) {
      const e = dev.epoch;
      s.updateEpoch.run(
        e.anchorIndex, e.anchorMs, e.firstEndIndex, e.lastEndIndex, e.lastTms, e.rawBooked.toString(),
        e.energyBase?.toString() ?? null, e.lastEnergy?.toString() ?? null, e.lastEnergyIndex, e.scaleKv, e.scaleKi,
        e.segRaw.toString(), e.segNwh, e.nwhBooked, e.id,
      );
    }
    for (const dev of totals) s.updateDeviceTotal.run(dev.epoch.totalAtStart + dev.epoch.nwhBooked, nowMs, dev.id);
  }

  /**
   * Pack the device's closed hours that have no pack yet (pack.ts), at most PACK_HOURS_PER_BATCH. An hour is
   * closed when the next window cannot land in it: it books at or after the epoch's last time, into the bucket
   * holding the millisecond before it.
   */
  private packClosedHours(): void {
    const packer = this.packer!;
    if (this.packRescan) {
      this.packRescan = false;
      for (const dev of this.devices.values()) {
        dev.packCheckedBefore = -Infinity;
        dev.packScanFrom = -Infinity;
      }
    }
    for (const dev of this.devices.values()) {
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

  /** Delete raw windows and rollups past their retention. Returns rows deleted. */
  applyRetention(nowMs: number): number {
    this.assertWritable();
    this.flush();
    let deleted = 0;
    // Per device, so that each DELETE walks the (device, time) index over the expired rows only instead of
    // scanning every window: this runs on the ingest thread.
    const devices = this.db.prepare('SELECT id FROM devices').pluck().all() as number[];
    const windows = this.db.prepare('DELETE FROM windows WHERE device = ? AND t_end_ms < ?');
    const rollups = this.db.prepare('DELETE FROM rollups WHERE device = ? AND level = ? AND t_start_ms < ?');
    const packs = this.db.prepare('DELETE FROM rollup_packs WHERE device = ? AND t_start_ms < ?');
    const packRows = this.db.prepare('SELECT coalesce(sum(rows), 0) FROM rollup_packs WHERE device = ? AND t_start_ms < ?').pluck();
    // One transaction: a reader never sees an hour half unpacked, and a crash keeps the old state.
    this.db.transaction(() => {
      for (const device of devices) {
        if (this.windowRetentionMs !== null) deleted += windows.run(device, nowMs - this.windowRetentionMs).changes;
        for (const level of ROLLUP_LEVELS) {
          const keep = this.rollupRetentionMs[level.name];
          if (keep === undefined || keep === null) continue;
          const cutMs = nowMs - keep;
          if (level.ms === PACKED_LEVEL_MS) {
            // The 1 s level lives in packs and rows: whole hours before the cut go as packs; the hour the cut
            // falls in is unpacked first, so that its rows after the cut are kept (the backfill packs them again).
            const hourMs = Math.floor(cutMs / PACK_MS) * PACK_MS;
            if (hourMs < cutMs) this.packer!.unpackHour(device, hourMs);
            deleted += Number(packRows.get(device, hourMs));
            packs.run(device, hourMs);
          }
          deleted += rollups.run(device, level.ms, cutMs).changes;
        }
      }
    })();
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
