// Read side of the store, for the API and the CLI: devices, history (folded by history.ts), exact energy
// sums, and the source rows of an export. Works on a read-only connection as well as on the writer's.

import type Database from 'better-sqlite3';
import { emptyFoldRow, ROLLUP_SELECT, statsFloats, WINDOW_SELECT, windowRowInto, type FoldRow } from './fold.ts';
import { foldHistory, type HistoryAnswer, type HistoryRequest } from './history.ts';
import {
  hasPacks, PACK_ENERGY, PACK_FLAGS, PACK_MS, PACK_SAMPLES, PACK_STATS, PACK_STRIDE, PACK_T, PACK_WINDOWS, PACKED_LEVEL_MS, packFloats, recordInto, type RollupBlock,
} from './pack.ts';
import { rangeEnergy } from './range-energy.ts';
import { QUANTITIES, ROLLUP_LEVELS, STATS_BYTES, type Quantity, type RollupLevelName } from './schema.ts';
import { parseRegisters, type CalibrationRegisters } from './types.ts';

export class UnknownDeviceError extends Error {
  override readonly name = 'UnknownDeviceError';
  constructor(readonly device: string) {
    super(`unknown device '${device}': \`crabwatt devices --db FILE\` lists the stored ones`);
  }
}

export class QueryError extends Error {
  override readonly name = 'QueryError';
}

export interface StoredDevice {
  /** 16 hex digits. */
  id: string;
  name: string | null;
  kv: number;
  ki: number;
  /** The calibration registers the host keeps for the device (null before any is known). */
  calibration: CalibrationRegisters | null;
  fsNum: number;
  fsDen: number;
  board: number | null;
  adcPart: number | null;
  totalNwh: bigint;
  createdMs: number;
  lastSeenMs: number | null;
  epochs: number;
}

export type SourceLevel = 'raw' | RollupLevelName;

const MAX_POINTS = 100_000;
const LITTLE_ENDIAN = new Uint8Array(new Float64Array([1]).buffer)[7] === 0x3f;
/** Rollup rows per query of rowBlocks. */
const ROW_PAGE = 2048;

export class StoreReader {
  readonly db: Database.Database;
  private readonly deviceCache = new Map<string, { id: number; fs: number }>();
  private readonly statements = new Map<string, Database.Statement>();

  constructor(db: Database.Database) {
    this.db = db;
  }

  devices(): StoredDevice[] {
    const rows = this.db
      .prepare(
        `SELECT d.*, (SELECT count(*) FROM epochs e WHERE e.device = d.id) AS epochs FROM devices d ORDER BY d.id`,
      )
      .safeIntegers(true)
      .all() as Record<string, bigint | string | number | null>[];
    return rows.map((r) => ({
      id: String(r['device_id']),
      name: r['name'] === null ? null : String(r['name']),
      kv: Number(r['kv']),
      ki: Number(r['ki']),
      calibration: parseRegisters(r['calibration'] as string | null),
      fsNum: Number(r['fs_num']),
      fsDen: Number(r['fs_den']),
      board: r['board'] === null ? null : Number(r['board']),
      adcPart: r['adc_part'] === null ? null : Number(r['adc_part']),
      totalNwh: BigInt(r['total_nwh'] as bigint),
      createdMs: Number(r['created_ms']),
      lastSeenMs: r['last_seen_ms'] === null ? null : Number(r['last_seen_ms']),
      epochs: Number(r['epochs']),
    }));
  }

  /** Internal id and sample rate of a device given as hex id; throws UnknownDeviceError. */
  resolveDevice(device: string): { id: number; fs: number } {
    const key = device.toLowerCase();
    const cached = this.deviceCache.get(key);
    if (cached) return cached;
    const row = this.db.prepare('SELECT id, fs_num, fs_den FROM devices WHERE device_id = ?').get(key) as
      | { id: number; fs_num: number; fs_den: number }
      | undefined;
    if (!row) throw new UnknownDeviceError(device);
    const found = { id: row.id, fs: row.fs_num / row.fs_den };
    this.deviceCache.set(key, found);
    return found;
  }

  /** The only stored device, for commands that default to it; a clear error when there are none or several. */
  defaultDevice(): string {
    const rows = this.db.prepare('SELECT device_id FROM devices ORDER BY id').pluck().all() as string[];
    if (rows.length === 1) return rows[0]!;
    if (rows.length === 0) throw new QueryError('the database holds no device yet: run `crabwatt serve` first');
    throw new QueryError(`the database holds ${rows.length} devices (${rows.join(', ')}): choose one with --device`);
  }

  /** History folded to at most `points` buckets (history.ts). */
  history(req: HistoryRequest): HistoryAnswer {
    const { fromMs, toMs, points } = req;
    if (!Number.isFinite(fromMs) || !Number.isFinite(toMs) || !(toMs > fromMs)) {
      throw new QueryError(`history range must have from < to, got ${fromMs} … ${toMs}`);
    }
    if (!Number.isInteger(points) || points < 1 || points > MAX_POINTS) {
      throw new QueryError(`points must be an integer 1 … ${MAX_POINTS}, got ${points}`);
    }
    const indices = req.fields.map((f) => {
      const k = QUANTITIES.indexOf(f);
      if (k < 0) throw new QueryError(`unknown field '${f}': choose from ${QUANTITIES.join(', ')}`);
      return k;
    });
    const dev = this.resolveDevice(req.device);
    return foldHistory(
      {
        windows: (fromMs, toMs) => this.windowsEndingIn(dev.id, fromMs, toMs),
        longestWindowSamples: (fromMs, toMs) =>
          (this.statement('longestWindow', 'SELECT coalesce(max(samples), 0) FROM windows WHERE device = ? AND t_end_ms > ? AND t_end_ms <= ?').get(
            dev.id, fromMs, toMs,
          ) as [number])[0],
        blocks: (levelMs, fromMs, toMs) => this.levelBlocks(dev.id, levelMs, fromMs, toMs),
      },
      dev.fs,
      req,
      indices,
    );
  }

  /** Windows whose end lies in (fromMs, toMs]: a window belongs to the instant before its end, as in the rollups. */
  private *windowsEndingIn(devId: number, fromMs: number, toMs: number): Generator<FoldRow> {
    const row = emptyFoldRow();
    const stmt = this.db
      .prepare(`SELECT ${WINDOW_SELECT} FROM windows WHERE device = ? AND t_end_ms > ? AND t_end_ms <= ? ORDER BY t_end_ms`)
      .raw(true);
    for (const raw of stmt.iterate(devId, fromMs, toMs) as Iterable<unknown[]>) yield windowRowInto(raw, row);
  }

  /**
   * Exact energy booked in [fromMs, ∞) and in total. Whole hours come from the 1 h rollups and the partial
   * hour at the start from the 1 s level (packs and rows), so the sum is exact for any second-aligned start.
   */
  energy(device: string, sinceMs: number): { sinceNwh: bigint; totalNwh: bigint } {
    const dev = this.resolveDevice(device);
    const firstHour = Math.ceil(sinceMs / PACK_MS) * PACK_MS;
    const read = (this.energyTx ??= this.db.transaction((devId: number, since: number, hour: number) => {
      const partial = this.secondTotals(devId, since, hour, true).energyNwh;
      const whole = this.statement(
        'hoursEnergy',
        `SELECT coalesce(sum(energy_nwh), 0) FROM rollups WHERE device = ? AND level = ${PACK_MS} AND t_start_ms >= ?`,
      ).safeIntegers(true).get(devId, hour) as [bigint];
      const total = this.statement('totalNwh', 'SELECT total_nwh FROM devices WHERE id = ?').safeIntegers(true).get(devId) as [bigint];
      return { sinceNwh: partial + BigInt(whole[0]), totalNwh: BigInt(total[0]) };
    }));
    return read(dev.id, Math.ceil(sinceMs / 1000) * 1000, firstHour);
  }

  private energyTx: ((devId: number, since: number, hour: number) => { sinceNwh: bigint; totalNwh: bigint }) | undefined;

  /**
   * Exact nWh booked in each [from, to) (bounds whole seconds: see range-energy.ts), every range from the
   * coarsest rollups that tile it, all read in one transaction so that the sums are of one state of the ledger.
   */
  energyInRanges(device: string, ranges: readonly (readonly [number, number])[]): bigint[] {
    const dev = this.resolveDevice(device);
    const levelEnergy = (levelMs: number, fromMs: number, toMs: number): bigint => {
      if (levelMs === PACKED_LEVEL_MS) return this.secondTotals(dev.id, fromMs, toMs, true).energyNwh;
      const row = this.statement(
        'levelEnergy',
        'SELECT coalesce(sum(energy_nwh), 0) FROM rollups WHERE device = ? AND level = ? AND t_start_ms >= ? AND t_start_ms < ?',
      ).safeIntegers(true).get(dev.id, levelMs, fromMs, toMs) as [bigint];
      return BigInt(row[0]);
    };
    return this.db.transaction(() => ranges.map(([from, to]) => rangeEnergy(from, to, levelEnergy)))();
  }

  /** Source rows of a level over [fromMs, toMs), oldest first, streamed from SQLite (never all in memory). */
  *sourceRows(device: string, level: SourceLevel, fromMs: number, toMs: number): Generator<FoldRow> {
    const dev = this.resolveDevice(device);
    const row = emptyFoldRow();
    if (level === 'raw') {
      const stmt = this.db
        .prepare(`SELECT ${WINDOW_SELECT} FROM windows WHERE device = ? AND t_end_ms >= ? AND t_end_ms < ? ORDER BY t_end_ms`)
        .raw(true);
      for (const raw of stmt.iterate(dev.id, fromMs, toMs) as Iterable<unknown[]>) yield windowRowInto(raw, row);
      return;
    }
    for (const block of this.levelBlocks(dev.id, levelMsOf(level), fromMs, toMs)) {
      for (let r = block.begin; r < block.end; r++) yield recordInto(block, r, row);
    }
  }

  /**
   * Rollup rows of a level over [fromMs, toMs), oldest first, as blocks of float64 records (pack.ts layout):
   * the 1 s level from its hourly packs and its rows, everything else from the rows, a page at a time.
   * A block is valid until the next one is pulled (its storage is reused). No statement or transaction stays
   * open between blocks, so the connection is free for others while the consumer works (or waits on a slow client).
   */
  *rollupBlocks(device: string, level: Exclude<SourceLevel, 'raw'>, fromMs: number, toMs: number): Generator<RollupBlock> {
    yield* this.levelBlocks(this.resolveDevice(device).id, levelMsOf(level), fromMs, toMs);
  }

  /**
   * The one reader of rollup records (rollupBlocks, history, sourceRows). The 1 s level is the union of packs
   * and rows (an hour is in one of them, pack.ts): each step reads, in one read transaction, the next pack, the
   * rows before it (a page at most) and, when the rows end before it, the pack itself; the next step starts
   * where this one stopped. A writer packing or unpacking an hour between two steps is thus seen by the later
   * step whole, and every second is read once.
   */
  private *levelBlocks(devId: number, levelMs: number, fromMs: number, toMs: number): Generator<RollupBlock> {
    if (levelMs !== PACKED_LEVEL_MS || !this.packsReadable()) {
      let from = fromMs;
      for (;;) {
        const page = this.readRowPage(devId, levelMs, from, toMs);
        if (page.end > 0) yield page;
        if (page.end < ROW_PAGE) return;
        from = page.data[(page.end - 1) * PACK_STRIDE + PACK_T]! + 1;
      }
    }
    const step = (this.stepTx ??= this.db.transaction((dev: number, cursor: number, to: number) => this.readStep(dev, cursor, to)));
    let cursor = fromMs;
    while (cursor < toMs) {
      const s = step(devId, cursor, toMs);
      if (s.rows.end > 0) yield s.rows;
      if (s.pack && s.pack.end > s.pack.begin) yield s.pack;
      cursor = s.next;
    }
  }

  private stepTx: ((devId: number, cursor: number, toMs: number) => { rows: RollupBlock; pack: RollupBlock | undefined; next: number }) | undefined;

  /** One step of levelBlocks at the 1 s level, inside its read transaction. */
  private readStep(devId: number, cursor: number, toMs: number): { rows: RollupBlock; pack: RollupBlock | undefined; next: number } {
    const next = this.statement(
      'nextPack',
      'SELECT t_start_ms FROM rollup_packs WHERE device = ? AND t_start_ms > ? AND t_start_ms < ? AND rows > 0 ORDER BY t_start_ms LIMIT 1',
    ).get(devId, cursor - PACK_MS, toMs) as [number] | undefined;
    const hourMs = next?.[0];
    const rowsTo = hourMs === undefined ? toMs : Math.min(hourMs, toMs);
    const rows = this.readRowPage(devId, PACKED_LEVEL_MS, cursor, rowsTo);
    if (rows.end === ROW_PAGE) return { rows, pack: undefined, next: rows.data[(rows.end - 1) * PACK_STRIDE + PACK_T]! + 1 };
    if (hourMs === undefined) return { rows, pack: undefined, next: toMs };
    const n = this.loadPack(devId, hourMs);
    const data = this.packData!;
    const from = Math.max(cursor, hourMs);
    const to = Math.min(toMs, hourMs + PACK_MS);
    let begin = 0;
    while (begin < n && data[begin * PACK_STRIDE]! < from) begin++;
    let end = begin;
    while (end < n && data[end * PACK_STRIDE]! < to) end++;
    return { rows, pack: { data, begin, end, bigEnergy: undefined }, next: hourMs + PACK_MS };
  }

  /**
   * Records and energy of the 1 s level over [fromMs, toMs) (packs and rows), inside a read transaction: whole
   * packs count their `rows`, packs cut by the range (two at most) and the energy are read record by record.
   */
  private secondTotals(devId: number, fromMs: number, toMs: number, withEnergy: boolean): { records: number; energyNwh: bigint } {
    const withPacks = this.packsReadable();
    // Rows of a packed hour are skipped: schema 2 (read by a reader before the writer migrated it) kept both.
    const rowSums = this.statement(
      withPacks ? 'secondRowSums' : 'secondRowSumsNoPacks',
      `SELECT count(*), coalesce(sum(energy_nwh), 0) FROM rollups r
       WHERE r.device = ? AND r.level = ${PACKED_LEVEL_MS} AND r.t_start_ms >= ? AND r.t_start_ms < ?` +
        (withPacks
          ? ` AND NOT EXISTS (SELECT 1 FROM rollup_packs p WHERE p.device = r.device AND p.rows > 0 AND p.t_start_ms = r.t_start_ms - r.t_start_ms % ${PACK_MS})`
          : ''),
    ).safeIntegers(true).get(devId, fromMs, toMs) as [bigint, bigint];
    let records = Number(rowSums[0]);
    let energyNwh = BigInt(rowSums[1]);
    if (!withPacks) return { records, energyNwh };
    const packs = this.statement(
      'packsIn',
      'SELECT t_start_ms, rows FROM rollup_packs WHERE device = ? AND t_start_ms > ? AND t_start_ms < ? AND rows > 0 ORDER BY t_start_ms',
    ).all(devId, fromMs - PACK_MS, toMs) as [number, number][];
    let sum = 0;
    for (const [hourMs, rows] of packs) {
      if (!withEnergy && hourMs >= fromMs && hourMs + PACK_MS <= toMs) {
        records += rows;
        continue;
      }
      const n = this.loadPack(devId, hourMs);
      const d = this.packData!;
      for (let r = 0; r < n; r++) {
        const o = r * PACK_STRIDE;
        const t = d[o + PACK_T]!;
        if (t < fromMs || t >= toMs) continue;
        records++;
        // Each energy is a safe integer (else the hour is unpackable); their sum is kept exact.
        const e = sum + d[o + PACK_ENERGY]!;
        if (Number.isSafeInteger(e)) sum = e;
        else {
          energyNwh += BigInt(sum) + BigInt(d[o + PACK_ENERGY]!);
          sum = 0;
        }
      }
    }
    return { records, energyNwh: energyNwh + BigInt(sum) };
  }

  private packs: boolean | undefined;
  private packData: Float64Array | undefined;

  /**
   * A pack's records, copied into storage this reader reuses, so that nothing refers to the BLOB's buffer once
   * this returns (the generator's locals would keep it alive across its yields). Why: the BLOB (1.2 MB an hour) lives outside the JS heap, and one still referenced while the
   * hour is formatted survives a young-generation collection and gets promoted, to be freed only by a full
   * collection, which V8 starts after some 64 MB of such memory: a year-long export then sat ~60 MB above
   * idle. A copy of an hour costs some 0.1 ms.
   */
  private loadPack(devId: number, hourMs: number): number {
    const row = this.statement('packData', 'SELECT rows, data FROM rollup_packs WHERE device = ? AND t_start_ms = ?').get(devId, hourMs) as
      | [number, Uint8Array]
      | undefined;
    if (!row) return 0;
    const [rows, blob] = row;
    const n = rows * PACK_STRIDE;
    if (!this.packData || this.packData.length < n) this.packData = new Float64Array(Math.max(n, (PACK_MS / PACKED_LEVEL_MS) * PACK_STRIDE));
    if (rows > 0) {
      if (LITTLE_ENDIAN && blob.length === n * 8) new Uint8Array(this.packData.buffer, 0, n * 8).set(blob); // a memcpy, aligned or not
      else this.packData.set(packFloats(blob, rows));
    }
    return rows;
  }

  private packsReadable(): boolean {
    this.packs ??= hasPacks(this.db);
    return this.packs;
  }

  private rowPage: Float64Array | undefined;

  /** Up to ROW_PAGE rollup rows of a level from fromMs on (before toMs) as one block, one query. */
  private readRowPage(devId: number, levelMs: number, fromMs: number, toMs: number): RollupBlock {
    const stmt = this.statement(
      'rollupPage',
      // The energy as text where a number would lose digits (beyond 2^53 nWh).
      `SELECT ${ROLLUP_SELECT}, CASE WHEN abs(energy_nwh) > 9007199254740991 THEN CAST(energy_nwh AS TEXT) END
       FROM rollups WHERE device = ? AND level = ? AND t_start_ms >= ? AND t_start_ms < ? ORDER BY t_start_ms LIMIT ${ROW_PAGE}`,
    );
    const data = (this.rowPage ??= new Float64Array(ROW_PAGE * PACK_STRIDE));
    const page = stmt.all(devId, levelMs, fromMs, toMs) as unknown[][];
    let bigEnergy: Map<number, bigint> | undefined;
    for (let r = 0; r < page.length; r++) {
      const raw = page[r]!;
      const o = r * PACK_STRIDE;
      data[o + PACK_T] = raw[0] as number;
      data[o + PACK_SAMPLES] = raw[1] as number;
      data[o + PACK_WINDOWS] = raw[2] as number;
      data[o + PACK_ENERGY] = Number(raw[3]);
      data[o + PACK_FLAGS] = raw[4] as number;
      const st = statsFloats(raw[5] as Uint8Array, this.statsScratch);
      for (let k = 0; k < STATS_BYTES / 8; k++) data[o + PACK_STATS + k] = st[k]!;
      if (raw[6] !== null) (bigEnergy ??= new Map()).set(r, BigInt(raw[6] as string));
    }
    return { data, begin: 0, end: page.length, bigEnergy };
  }

  private readonly statsScratch = new Float64Array(STATS_BYTES / 8);

  /** A prepared raw statement, prepared once per reader (preparing costs more than a short query). */
  private statement(key: string, sql: string): Database.Statement {
    let stmt = this.statements.get(key);
    if (!stmt) {
      stmt = this.db.prepare(sql).raw(true);
      this.statements.set(key, stmt);
    }
    return stmt;
  }

  countSourceRows(device: string, level: SourceLevel, fromMs: number, toMs: number): number {
    const dev = this.resolveDevice(device);
    if (level === 'raw') {
      return this.db
        .prepare('SELECT count(*) FROM windows WHERE device = ? AND t_end_ms >= ? AND t_end_ms < ?')
        .pluck()
        .get(dev.id, fromMs, toMs) as number;
    }
    const levelMs = levelMsOf(level);
    if (levelMs === PACKED_LEVEL_MS) {
      const count = (this.countTx ??= this.db.transaction((devId: number, from: number, to: number) => this.secondTotals(devId, from, to, false).records));
      return count(dev.id, fromMs, toMs);
    }
    return this.db
      .prepare('SELECT count(*) FROM rollups WHERE device = ? AND level = ? AND t_start_ms >= ? AND t_start_ms < ?')
      .pluck()
      .get(dev.id, levelMs, fromMs, toMs) as number;
  }

  private countTx: ((devId: number, fromMs: number, toMs: number) => number) | undefined;

  sampleRate(device: string): number {
    return this.resolveDevice(device).fs;
  }
}

export function levelMsOf(level: Exclude<SourceLevel, 'raw'>): number {
  const l = ROLLUP_LEVELS.find((x) => x.name === level);
  if (!l) throw new QueryError(`unknown rollup level '${level}'`);
  return l.ms;
}
