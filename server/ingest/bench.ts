// Ingest throughput for `crabwatt bench`: the full host path — FrameDecoder (COBS, CRC) → Ingest (derive) →
// Store (ledger, rollups, batched transactions) — over frames encoded once beforehand, compared with
//   - the USB full-speed limit for frames of that size: 19 bulk packets of 64 bytes per 1 ms frame
//     = 1 216 000 B/s, divided by the mean encoded frame length;
//   - a bare better-sqlite3 loop inserting the very rows the full path stored, into the same schema with the
//     same pragmas and batch size (what SQLite alone costs).
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
import { Store } from '../store/store.ts';
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
}

export interface IngestBenchOptions {
  /** Window frames in the stream (each followed by an energy frame). Default 50 000. */
  windows?: number;
  /** Directory for the two scratch databases. Default the system temp dir. */
  dir?: string;
}

/** Encode a consistent stream: identify, then (window, energy) pairs. */
function buildStream(windows: number): { bytes: Buffer; frames: number; sim: SimulatedDevice } {
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
  while (templates.length < 200) sim.advance(sim.fs / 10);
  if (!identify) throw new Error('bench: the simulated device sent no identify');
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

/** The bare loop: the same rows into the same table, with the same pragmas and batch size. */
function runBareLoop(rows: unknown[][], path: string): { cpuS: number; wallS: number } {
  const bare = new Database(path);
  bare.pragma('journal_mode = WAL');
  bare.pragma('synchronous = NORMAL');
  migrate(bare);
  const insert = bare.prepare(`INSERT INTO windows VALUES (${Array(rows[0]!.length).fill('?').join(', ')})`);
  const batch = bare.transaction((slice: unknown[][]) => {
    for (const r of slice) insert.run(r);
  });
  const start = clock();
  for (let k = 0; k < rows.length; k += 4096) batch(rows.slice(k, k + 4096));
  const end = clock();
  bare.close();
  return { cpuS: end.cpuS - start.cpuS, wallS: end.wallS - start.wallS };
}

/**
 * Each side runs twice on fresh databases and the second run is measured: a host ingests for hours, so its
 * steady state is what matters, and neither side then pays the JIT's or SQLite's first-run costs.
 */
export function measureIngestThroughput(options: IngestBenchOptions = {}): IngestThroughput {
  const windows = options.windows ?? 50_000;
  if (!Number.isInteger(windows) || windows < 100) throw new RangeError(`bench: windows must be an integer ≥ 100, got ${windows}`);
  const dir = options.dir ?? tmpdir();
  const fullPath = join(dir, `crabwatt-bench-full-${process.pid}.sqlite`);
  const barePath = join(dir, `crabwatt-bench-bare-${process.pid}.sqlite`);
  const scrub = (p: string): void => {
    for (const suffix of ['', '-wal', '-shm', '.lock']) rmSync(p + suffix, { force: true });
  };
  const { bytes, frames, sim } = buildStream(windows);
  try {
    scrub(fullPath);
    runFullPath(bytes, windows, sim, fullPath);
    scrub(fullPath);
    const full = runFullPath(bytes, windows, sim, fullPath);
    const rows = full.rows;
    scrub(barePath);
    runBareLoop(rows, barePath);
    scrub(barePath);
    const bare = runBareLoop(rows, barePath);

    const meanFrameBytes = bytes.length / frames;
    const framesPerS = frames / full.cpuS;
    const windowsPerS = windows / full.cpuS;
    const limit = USB_FS_BULK_BYTES_PER_S / meanFrameBytes;
    const bareRowsPerS = rows.length / bare.cpuS;
    return {
      windows,
      frames,
      mean_frame_bytes: meanFrameBytes,
      frames_per_s: framesPerS,
      windows_per_s: windowsPerS,
      frames_per_wall_s: frames / full.wallS,
      usb_fs_frame_limit_per_s: limit,
      vs_wire: framesPerS / limit,
      bare_rows_per_s: bareRowsPerS,
      bare_rows_per_wall_s: rows.length / bare.wallS,
      vs_bare: windowsPerS / bareRowsPerS,
    };
  } finally {
    scrub(fullPath);
    scrub(barePath);
  }
}
