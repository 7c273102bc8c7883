// Ingest throughput for `crabwatt bench`: the full host path — FrameDecoder (COBS, CRC) → Ingest (derive) →
// Store (ledger, rollups, batched transactions) — over frames encoded once beforehand, compared with
//   - the USB full-speed limit for frames of that size: 19 bulk packets of 64 bytes per 1 ms frame
//     = 1 216 000 B/s, divided by the mean encoded frame length;
//   - a bare better-sqlite3 loop inserting the very rows the full path stored, into the same schema with the
//     same pragmas and batch size (what SQLite alone costs): one prepared single-row INSERT per row, as the
//     goal names it, and also with the store's own multi-row INSERT, so that the ratio against SQLite at its
//     best from JS is on record too.
// The windows are real: one-cycle windows of the simulated device's 230 V / 50 Hz load, computed by the exact
// model, then repeated with advancing sample indices and a running accumulator so the stream is consistent.

import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { encodeFrame, FrameDecoder, type FrameFields } from '../protocol/codec.ts';
import { WINDOW_MODE } from '../protocol/definition.ts';
import { SimulatedDevice } from '../sim/device.ts';
import { migrate } from '../store/schema.ts';
import { databaseLockPath } from '../store/lock.ts';
import { Store, WINDOWS_PER_INSERT } from '../store/store.ts';
import { Ingest } from './ingest.ts';

export const USB_FS_BULK_BYTES_PER_S = 19 * 64 * 1000;

/**
 * Rates are per second of this process's CPU time (user + system): on a shared machine wall time measures the
 * neighbours; the wall-clock rates are reported beside them. Writes in WAL mode with synchronous=NORMAL do not
 * wait for the disk at commit, so CPU time is the cost of the path.
 */
export interface IngestThroughput {
  windows: number;
  frames: number;
  mean_frame_bytes: number;
  /** Full path, frames (window and energy) per CPU second. */
  frames_per_s: number;
  /** Full path, window rows per CPU second. */
  windows_per_s: number;
  /** Full path, frames per wall-clock second. */
  frames_per_wall_s: number;
  usb_fs_frame_limit_per_s: number;
  /** frames_per_s / usb_fs_frame_limit_per_s (goal ≥ 10). */
  vs_wire: number;
  /** The bare insert loop, rows per CPU second. */
  bare_rows_per_s: number;
  bare_rows_per_wall_s: number;
  /** windows_per_s / bare_rows_per_s (goal ≥ 0.5). */
  vs_bare: number;
  /** Rows per statement of the stricter bare loop (the store's own multi-row INSERT). */
  bare_multirow_rows_per_insert: number;
  /** That loop, rows per CPU second. */
  bare_multirow_rows_per_s: number;
  /** windows_per_s / bare_multirow_rows_per_s: the full path against SQLite at its best from JS. */
  vs_bare_multirow: number;
  /** Measured runs per side; each side's fastest counts. */
  rounds: number;
}

export interface IngestBenchOptions {
  /** Window frames in the stream (each followed by an energy frame). Default 50 000. */
  windows?: number;
  /** Directory for the two scratch databases. Default the system temp dir. */
  dir?: string;
  /** Measured runs per side after the warm-up (default 3); the fastest counts. */
  rounds?: number;
}

/** The simulated device's identify and `count` one-cycle windows of its 230 V / 50 Hz load (no gap flag). */
export function simTemplates(count: number): { identify: FrameFields<'identify'>; windows: FrameFields<'window'>[]; sim: SimulatedDevice } {
  const sim = new SimulatedDevice({ seed: 9, speed: Infinity, bootConfig: { mode: WINDOW_MODE.CYCLES, cycles: 1 } });
  const decoder = new FrameDecoder();
  const templates: FrameFields<'window'>[] = [];
  let identify: FrameFields<'identify'> | undefined;
  sim.setOutput((b) => {
    for (const f of decoder.push(b)) {
      if (f.name === 'window' && !(f.fields.flags & 0x10)) templates.push(f.fields);
      if (f.name === 'identify') identify = f.fields;
    }
    return true;
  });
  sim.receive(encodeFrame('cmd_identify', 0, {}));
  while (templates.length < count) sim.advance(sim.fs / 10);
  if (!identify) throw new Error('bench: the simulated device sent no identify');
  return { identify, windows: templates, sim };
}

/** Encode a consistent stream: identify, then (window, energy) pairs. */
function buildStream(windows: number): { bytes: Buffer; frames: number; sim: SimulatedDevice } {
  const { identify, windows: templates, sim } = simTemplates(200);
  const chunks: Buffer[] = [encodeFrame('identify', 0, identify)];
  let seq = 1;
  let endIndex = 0n;
  let energy = 0n;
  for (let k = 0; k < windows; k++) {
    const t = templates[k % templates.length]!;
    endIndex += BigInt(t.samples);
    energy += t.sum_vi;
    chunks.push(encodeFrame('window', seq++, { ...t, end_index: endIndex }));
    chunks.push(encodeFrame('energy', seq++, { end_index: endIndex, energy, boot_id: identify.boot_id }));
  }
  return { bytes: Buffer.concat(chunks), frames: chunks.length, sim };
}

/** CPU seconds (user + system) and wall seconds since `from`. */
function clock(): { cpuS: number; wallS: number } {
  const c = process.cpuUsage();
  return { cpuS: (c.user + c.system) / 1e6, wallS: performance.now() / 1000 };
}

interface FullPathRun {
  cpuS: number;
  wallS: number;
  /** The rows exactly as the store bound them (bigint for the 64-bit columns, numbers for the rest). */
  rows: unknown[][];
}

/** Full path into a fresh database at `path`. Device time drives the host clock, as it would live. */
function runFullPath(bytes: Buffer, windows: number, sim: SimulatedDevice, path: string): FullPathRun {
  const store = Store.open(path);
  const t0 = Date.UTC(2026, 0, 1);
  let nowMs = t0;
  const ingest = new Ingest({ store, kind: 'simulated', defaultScale: { kv: sim.kv, ki: sim.ki }, now: () => nowMs });
  const decoder = new FrameDecoder();
  const msPerSample = 1000 / sim.fs;
  const chunkBytes = 64 * 1024;
  const start = clock();
  for (let off = 0; off < bytes.length; off += chunkBytes) {
    for (const frame of decoder.push(bytes.subarray(off, off + chunkBytes))) {
      if (frame.name === 'window') nowMs = t0 + Number(frame.fields.end_index) * msPerSample;
      ingest.handleFrame(frame, nowMs);
    }
  }
  store.flush();
  const end = clock();
  if (ingest.counters.windows !== windows || decoder.counters.crcErrors !== 0) {
    throw new Error(`bench: the full path stored ${ingest.counters.windows} of ${windows} windows`);
  }
  const bigColumns = new Set(['end_index', 'sum_v', 'sum_i', 'sum_vv', 'sum_ii', 'sum_vi', 'energy_nwh']);
  const select = store.db.prepare('SELECT * FROM windows').raw(true).safeIntegers(true);
  const names = select.columns().map((c) => c.name);
  const rows = (select.all() as unknown[][]).map((r) =>
    r.map((v, k) => (typeof v === 'bigint' && !bigColumns.has(names[k]!) ? Number(v) : v)),
  );
  store.close();
  return { cpuS: end.cpuS - start.cpuS, wallS: end.wallS - start.wallS, rows };
}

/**
 * The bare loop: the same rows into the same table, with the same pragmas and batch size. `rowsPerInsert` 1 is
 * the baseline the goal names (one prepared single-row INSERT per row); more rows per statement is the
 * stricter comparison, with the multi-row INSERT the store itself uses.
 */
function runBareLoop(rows: unknown[][], path: string, rowsPerInsert: number): { cpuS: number; wallS: number } {
  const bare = new Database(path);
  bare.pragma('journal_mode = WAL');
  bare.pragma('synchronous = NORMAL');
  migrate(bare);
  const columns = rows[0]!.length;
  const values = (n: number): string => Array(n).fill(`(${Array(columns).fill('?').join(', ')})`).join(', ');
  const insertOne = bare.prepare(`INSERT INTO windows VALUES ${values(1)}`);
  const insertMany = bare.prepare(`INSERT INTO windows VALUES ${values(rowsPerInsert)}`);
  const bound: unknown[] = new Array(rowsPerInsert * columns);
  const batch = bare.transaction((from: number, to: number) => {
    let k = from;
    if (rowsPerInsert > 1) {
      for (; k + rowsPerInsert <= to; k += rowsPerInsert) {
        for (let j = 0; j < rowsPerInsert; j++) {
          const r = rows[k + j]!;
          for (let c = 0; c < columns; c++) bound[j * columns + c] = r[c];
        }
        insertMany.run(bound);
      }
    }
    for (; k < to; k++) insertOne.run(rows[k]!);
  });
  const start = clock();
  for (let k = 0; k < rows.length; k += 4096) batch(k, Math.min(rows.length, k + 4096));
  const end = clock();
  bare.close();
  return { cpuS: end.cpuS - start.cpuS, wallS: end.wallS - start.wallS };
}

/**
 * Each side runs once to warm up (the JIT, SQLite's first-run costs; a host ingests for hours, so its steady
 * state is what matters), then `rounds` times in turn on fresh databases, and each side's fastest run counts:
 * on a shared machine the neighbours only ever add time, and alternating the sides spreads a busy spell over
 * all of them rather than one.
 */
export function measureIngestThroughput(options: IngestBenchOptions = {}): IngestThroughput {
  const windows = options.windows ?? 50_000;
  if (!Number.isInteger(windows) || windows < 100) throw new RangeError(`bench: windows must be an integer ≥ 100, got ${windows}`);
  const rounds = options.rounds ?? 3;
  if (!Number.isInteger(rounds) || rounds < 1) throw new RangeError(`bench: rounds must be an integer ≥ 1, got ${rounds}`);
  const dir = options.dir ?? tmpdir();
  const fullPath = join(dir, `crabwatt-bench-full-${process.pid}.sqlite`);
  const barePath = join(dir, `crabwatt-bench-bare-${process.pid}.sqlite`);
  const scrub = (p: string): void => {
    // The lock file too: no process holds it once the store is closed.
    for (const file of [databaseLockPath(p), p, `${p}-wal`, `${p}-shm`]) rmSync(file, { force: true });
  };
  const { bytes, frames, sim } = buildStream(windows);
  const fastest = (a: { cpuS: number; wallS: number } | undefined, b: { cpuS: number; wallS: number }) =>
    a === undefined ? { cpuS: b.cpuS, wallS: b.wallS } : { cpuS: Math.min(a.cpuS, b.cpuS), wallS: Math.min(a.wallS, b.wallS) };
  try {
    scrub(fullPath);
    const { rows } = runFullPath(bytes, windows, sim, fullPath);
    scrub(barePath);
    runBareLoop(rows, barePath, 1);
    scrub(barePath);
    runBareLoop(rows, barePath, WINDOWS_PER_INSERT);
    let full: { cpuS: number; wallS: number } | undefined;
    let bare: { cpuS: number; wallS: number } | undefined;
    let bareMulti: { cpuS: number; wallS: number } | undefined;
    for (let r = 0; r < rounds; r++) {
      scrub(fullPath);
      full = fastest(full, runFullPath(bytes, windows, sim, fullPath));
      scrub(barePath);
      bare = fastest(bare, runBareLoop(rows, barePath, 1));
      scrub(barePath);
      bareMulti = fastest(bareMulti, runBareLoop(rows, barePath, WINDOWS_PER_INSERT));
    }
    full = full!;
    bare = bare!;
    bareMulti = bareMulti!;

    const meanFrameBytes = bytes.length / frames;
    const framesPerS = frames / full.cpuS;
    const windowsPerS = windows / full.cpuS;
    const limit = USB_FS_BULK_BYTES_PER_S / meanFrameBytes;
    const bareRowsPerS = rows.length / bare.cpuS;
    const bareMultiRowsPerS = rows.length / bareMulti.cpuS;
    return {
      windows,
      frames,
      rounds,
      mean_frame_bytes: meanFrameBytes,
      frames_per_s: framesPerS,
      windows_per_s: windowsPerS,
      frames_per_wall_s: frames / full.wallS,
      usb_fs_frame_limit_per_s: limit,
      vs_wire: framesPerS / limit,
      bare_rows_per_s: bareRowsPerS,
      bare_rows_per_wall_s: rows.length / bare.wallS,
      vs_bare: windowsPerS / bareRowsPerS,
      bare_multirow_rows_per_insert: WINDOWS_PER_INSERT,
      bare_multirow_rows_per_s: bareMultiRowsPerS,
      vs_bare_multirow: windowsPerS / bareMultiRowsPerS,
    };
  } finally {
    scrub(fullPath);
    scrub(barePath);
  }
}
