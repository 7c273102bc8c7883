// Body of the export worker thread (see threaded.ts): reads the store on its own read-only connection and
// formats its share of an export's segments (every other one) with the very loop of a single-threaded export
// (exportCsvViews), handing each chunk to the main thread in one of `buffers` ArrayBuffers, transferred (no
// copy) and given back once the main thread has read it. The fixed set of buffers is the back-pressure (a slow
// client holds back the reading here, as it does a single-threaded export) and keeps the chunks from churning
// the allocator: fresh ~128 KB buffers, freed on the main thread whenever its GC came round, left a malloc arena
// at 64 MB resident (bench: +60 MB peak).

import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { StoreReader } from '../store/query.ts';
import { exportCsvViews, type ExportRequest } from './csv.ts';

export interface ExportJob {
  dbPath: string;
  req: ExportRequest;
  /** exportSegments(req); this worker exports segments first, first + step, … (segment k is [bounds[k], bounds[k+1])). */
  bounds: number[];
  first: number;
  step: number;
  chunkBytes: number;
  /** Buffers in rotation; each holds one chunk (chunkBytes and the row that crossed it). */
  buffers: number;
}

/**
 * Worker → main: a chunk (the first `length` bytes of `buffer`); `segment`: segment k is complete; null: all
 * done. Main → worker: a buffer back.
 */
export type ExportChunkMessage = { buffer: ArrayBuffer; length: number } | { segment: number } | null;

/** Room above chunkBytes: a chunk ends with the row that crossed it (a few hundred bytes at most). */
export const CHUNK_SLACK_BYTES = 4096;

const port = parentPort;
if (!port) throw new Error('csv-worker.ts runs as a worker thread (threaded.ts starts it)');
const job = workerData as ExportJob;
const free: ArrayBuffer[] = Array.from({ length: job.buffers }, () => new ArrayBuffer(job.chunkBytes + CHUNK_SLACK_BYTES));
let wake: (() => void) | undefined;
port.on('message', (buffer: ArrayBuffer) => {
  free.push(buffer);
  const w = wake;
  wake = undefined;
  w?.();
});

const db = new Database(job.dbPath, { readonly: true, fileMustExist: true });
try {
  const reader = new StoreReader(db);
  for (let k = job.first; k + 1 < job.bounds.length; k += job.step) {
    const segment = { ...job.req, fromMs: job.bounds[k]!, toMs: job.bounds[k + 1]! };
    for (const view of exportCsvViews(reader, segment, job.chunkBytes, k === 0)) {
      if (view.length === 0) continue;
      while (free.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      let buffer = free.pop()!;
      // Never in practice (a row is far shorter than the slack), but a chunk must not be cut.
      if (buffer.byteLength < view.length) buffer = new ArrayBuffer(view.length);
      new Uint8Array(buffer).set(view);
      port.postMessage({ buffer, length: view.length } satisfies ExportChunkMessage, [buffer]);
    }
    port.postMessage({ segment: k } satisfies ExportChunkMessage);
  }
  port.postMessage(null satisfies ExportChunkMessage);
} finally {
  db.close();
}
port.close();
