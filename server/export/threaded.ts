// A large CSV export on two threads: the range is cut into segments (exportSegments: an hour of 1 s rows each),
// a worker thread (csv-worker.ts) reads and formats the odd ones on its own connection while the main thread
// formats the even ones and sends everything in order. Both run the one loop of a single-threaded export, so the
// text is the same byte for byte.
//
// A worker is a V8 isolate of its own (~30 MB resident once it has loaded its code, luxon and a SQLite
// connection) and takes ~0.1 s to start, so only exports of at least EXPORT_WORKER_MIN_ROWS rows get one, at
// most maxExportWorkers() run at once (a further large export runs single-threaded, as before), and none by
// default. The worker ends with its export: when the consumer stops early (a client that went away) or fails,
// it is terminated, which also closes its connection; an error in it fails that export only.

import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import * as esbuild from 'esbuild';
import { StoreReader } from '../store/query.ts';
import { estimateExportRows, exportCsvChunks, exportSegments, type ExportRequest } from './csv.ts';
// Types only: the module itself runs as the worker (importing it here would run its body on this thread).
import type { ExportChunkMessage, ExportJob } from './csv-worker.ts';

/** Below this many rows (~0.3 s on one thread) the worker's start-up is not worth it. */
export const EXPORT_WORKER_MIN_ROWS = 200_000;
/**
 * Workers running at once, over all exports of this process: CRABWATT_EXPORT_WORKERS, read at each export;
 * 0 (the default) keeps every export on the main thread. Off by default for its memory: measured on the shared
 * 2-core machine (`npx tsx server/api/bench.ts --days 365 --export-workers 1`, load ~4.5 from other jobs), a
 * year of 1 s rows went out at 620 k rows/s against 516 k single-threaded (620 k vs 657 k rows per server
 * CPU-second), but the server peaked at 322 MB against 149 MB: the worker's isolate and connection are ~30 MB,
 * and the rest grows with the export's length (30 days: 170 MB against 127 MB), a growth not explained yet.
 */
export function maxExportWorkers(): number {
  const text = process.env.CRABWATT_EXPORT_WORKERS;
  if (text === undefined || text === '') return 0;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 64) {
    throw new RangeError(`CRABWATT_EXPORT_WORKERS must be an integer 0 … 64 (0: no export worker threads), got '${text}'`);
  }
  return n;
}

/**
 * Chunk size of a threaded export: the HTTP layer passes chunks of 64 KiB or more through as they are, and a
 * string stays below V8's large-object size (128 KiB), where it would be allocated in the old generation
 * (measured: +1 s CPU and +40 MB peak for 30 days of 1 s rows with 128 KiB chunks).
 */
const CHUNK_BYTES = 64 * 1024;
/** A slot's room above CHUNK_BYTES: a chunk ends with the row that crossed it (a few hundred bytes at most). */
const SLOT_BYTES = CHUNK_BYTES + 4096;
/**
 * Chunk slots shared by the threads: chunks the worker may be ahead of the socket, ~1 MB, room for its next
 * segment (~0.5 MB for an hour of 1 s rows) while this thread formats its own.
 */
const SLOTS = 16;
/**
 * The worker's V8 heap: a 2 MB semi-space young generation as `crabwatt serve` runs with (its garbage is a
 * generator's worth per chunk; the packs and chunks live outside the heap), and an old generation far above
 * the ~10 MB it uses, so only a runaway ends it (as a failed export, never the server).
 */
const WORKER_LIMITS = { maxYoungGenerationSizeMb: 6, maxOldGenerationSizeMb: 64 };

let workerCode: Promise<URL> | undefined;

/**
 * The worker's code: csv-worker.ts and what it imports bundled into one ES module by esbuild, once per process
 * (~0.1 s), loaded from a data: URL. A worker does not inherit the main thread's loader hooks, and running tsx
 * in it (a hooks thread of its own, transforms and their source maps) cost ~13 MB more than this. better-sqlite3
 * (a native addon) stays outside, imported by its absolute file URL.
 */
function workerUrl(): Promise<URL> {
  workerCode ??= (async () => {
    const sqlite = pathToFileURL(createRequire(import.meta.url).resolve('better-sqlite3')).href;
    const out = await esbuild.build({
      entryPoints: [fileURLToPath(new URL('./csv-worker.ts', import.meta.url))],
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      write: false,
      logLevel: 'silent',
      plugins: [
        {
          name: 'native-addon-by-url',
          setup(build) {
            build.onResolve({ filter: /^better-sqlite3$/ }, () => ({ path: sqlite, external: true }));
          },
        },
      ],
    });
    return new URL(`data:text/javascript;base64,${Buffer.from(out.outputFiles[0]!.contents).toString('base64')}`);
  })();
  // A failed build is not cached: the next export tries again (and fails the same way, as a clean 500).
  workerCode.catch(() => (workerCode = undefined));
  return workerCode;
}

let running = 0;
let started = 0;

/** Workers running now, and started since the process began (for tests: was a worker used, has it ended). */
export function exportWorkers(): { running: number; started: number } {
  return { running, started };
}

/** Whether an export is large enough for a worker (an estimate from the store, cheap: counts, no rows read). */
export function wantsExportWorker(reader: StoreReader, req: ExportRequest): boolean {
  return maxExportWorkers() > 0 && estimateExportRows(reader, req) >= EXPORT_WORKER_MIN_ROWS;
}

/**
 * The CSV of `req` from the database at `dbPath` as text chunks, exportCsvChunks' text exactly, made by this
 * thread and a worker thread: the range is cut into segments (exportSegments, about an hour of 1 s rows each),
 * the worker formats the odd ones while this thread formats the even ones and sends everything in order. (A
 * worker doing all the formatting, this thread only the socket, measured no faster: reading and formatting
 * cost several times what the HTTP pipeline costs, so that is the part to split.) When maxExportWorkers() are
 * busy, or the range is one segment, this thread does it all. Returning early (`return()`, as a stream does
 * when its client goes away) terminates the worker; a failure in the worker is thrown from here.
 *
 * Text, not Buffers: the worker's slot is free again at once, and the string lives on this thread's heap,
 * where its GC sees it (a Buffer handed on to the socket would have to be a fresh allocation per chunk).
 */
export async function* exportCsvInWorker(dbPath: string, req: ExportRequest): AsyncGenerator<string> {
  const bounds = exportSegments(req);
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  let worker: Worker | undefined;
  let shared: SharedArrayBuffer | undefined;
  try {
    const reader = new StoreReader(db);
    if (bounds.length < 3 || running >= maxExportWorkers()) {
      yield* exportCsvChunks(reader, req);
      return;
    }
    running++;
    started++;
    try {
      shared = new SharedArrayBuffer(SLOTS * SLOT_BYTES);
      const job: ExportJob = { dbPath, req, bounds, first: 1, step: 2, chunkBytes: CHUNK_BYTES, shared, slots: SLOTS, slotBytes: SLOT_BYTES };
      worker = new Worker(await workerUrl(), { workerData: job, resourceLimits: WORKER_LIMITS });
    } catch (err) {
      running--;
      throw err;
    }
    const queue: ExportChunkMessage[] = [];
    let failure: Error | undefined;
    let wake: (() => void) | undefined;
    const notify = (): void => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    worker.on('message', (m: ExportChunkMessage) => {
      queue.push(m);
      notify();
    });
    worker.on('error', (err) => {
      failure ??= new Error(`the export worker failed: ${err.message}`, { cause: err });
      notify();
    });
    worker.on('exit', (code) => {
      // After its last message the worker exits by itself; before it, an exit is a failure ('error' names it).
      failure ??= new Error(`the export worker stopped (exit code ${code}) before the export was complete`);
      notify();
    });
    for (let k = 0; k + 1 < bounds.length; k++) {
      if (k % 2 === 0) {
        for (const chunk of exportCsvChunks(reader, { ...req, fromMs: bounds[k]!, toMs: bounds[k + 1]! }, CHUNK_BYTES, k === 0)) {
          if (chunk.length > 0) yield chunk;
        }
        continue;
      }
      for (;;) {
        while (queue.length === 0 && !failure) await new Promise<void>((resolve) => (wake = resolve));
        const m = queue.shift();
        if (m === undefined) throw failure!;
        if (m === null) throw new Error(`the export worker ended before segment ${k}`);
        if ('segment' in m) {
          if (m.segment !== k) throw new Error(`the export worker sent segment ${m.segment} where ${k} was due`);
          break;
        }
        const text = Buffer.from(shared!, m.slot * SLOT_BYTES, m.length).toString('latin1'); // CSV is ASCII
        worker.postMessage(m.slot); // free for the worker's next chunk
        yield text;
      }
    }
  } finally {
    db.close();
    if (worker) {
      running--;
      await worker.terminate();
    }
  }
}
