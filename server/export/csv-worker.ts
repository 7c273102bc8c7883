// Body of the export worker thread (see threaded.ts): reads the store on its own read-only connection and
// formats its share of an export's segments (every other one) with the very loop of a single-threaded export
// (exportCsvViews), handing each chunk to the main thread in one of `slots` slots of a SharedArrayBuffer,
// which the main thread hands back once it has read it. The fixed set of slots is the back-pressure (a slow
// client holds back the reading here, as it does a single-threaded export) and nothing is allocated per chunk:
// fresh buffers per chunk, freed on the main thread whenever its GC came round, left a malloc arena at 64 MB
// resident (+60 MB peak), and ArrayBuffers transferred to and fro grew the year export's peak to 384 MB.

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
  /** Slots of `shared`, slotBytes each; a slot holds one chunk (chunkBytes and the row that crossed it). */
  shared: SharedArrayBuffer;
  slots: number;
  slotBytes: number;
}

/**
 * Worker → main: a chunk (the first `length` bytes of slot `slot`); `segment`: segment k is complete; null: all
 * done. Main → worker: a slot number, free again.
 */
export type ExportChunkMessage = { slot: number; length: number } | { segment: number } | null;

const port = parentPort;
if (!port) throw new Error('csv-worker.ts runs as a worker thread (threaded.ts starts it)');
const job = workerData as ExportJob;
const free: number[] = Array.from({ length: job.slots }, (_, k) => k);
const bytes = new Uint8Array(job.shared);
let wake: (() => void) | undefined;
port.on('message', (slot: number) => {
  free.push(slot);
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
      // Never in practice (a row is far shorter than the slack), but a chunk must not be cut.
      if (view.length > job.slotBytes) throw new Error(`an export chunk of ${view.length} bytes exceeds its ${job.slotBytes}-byte slot`);
      while (free.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      const slot = free.pop()!;
      bytes.set(view, slot * job.slotBytes);
      port.postMessage({ slot, length: view.length } satisfies ExportChunkMessage);
    }
    port.postMessage({ segment: k } satisfies ExportChunkMessage);
  }
  port.postMessage(null satisfies ExportChunkMessage);
} finally {
  db.close();
}
port.close();
