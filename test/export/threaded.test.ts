// The threaded export (server/export/threaded.ts): a worker thread formats every other segment of the range,
// and the joined text must be exportCsvChunks' byte for byte, for every interval and in zones whose buckets are
// not UTC-aligned (DST days, +05:30: cuts at UTC hours fall inside local hours and days). Over HTTP: a large export takes the threaded path; a client that leaves
// mid-download ends the worker and the next export works; a failure inside the worker (a corrupt pack) aborts
// that response only.

import { EventEmitter } from 'node:events';
import { copyFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../server/api/app.ts';
import { BENCH_DEVICE, ensureYearDb } from '../../server/api/bench.ts';
import { storeFromReader } from '../../server/api/wire.ts';
import { EXPORT_INTERVALS, exportCsvChunks, exportSegments, type ExportRequest } from '../../server/export/csv.ts';
import { EXPORT_WORKER_MIN_ROWS, exportCsvInWorker, exportWorkers } from '../../server/export/threaded.ts';
import { PACK_MS } from '../../server/store/pack.ts';
import { StoreReader } from '../../server/store/query.ts';
import { Store, type DeviceRef } from '../../server/store/store.ts';
import { FakeDevices } from '../api/fakes.ts';
import { derivedFor, makeWindow, tempDir } from '../store/helpers.ts';

const FS = 1000;
const WINDOW_SAMPLES = 5000;
const SPRING_START = Date.UTC(2026, 2, 28, 20, 0, 0); // Berlin switches to CEST at 2026-03-29T01:00Z
const AUTUMN_START = Date.UTC(2026, 9, 24, 20, 0, 0); // back to CET at 2026-10-25T01:00Z
const SPAN_MS = 30 * 3_600_000;
const DAY0 = Date.UTC(2025, 0, 1);

let cleanup: () => void;
let storePath: string;
let benchPath: string;
let store: Store;
let dev: DeviceRef;
const savedWorkers = process.env.CRABWATT_EXPORT_WORKERS;

async function text(chunks: AsyncIterable<string> | Iterable<string>): Promise<string> {
  const parts: string[] = [];
  for await (const c of chunks) parts.push(c);
  return parts.join('');
}

function single(path: string, req: ExportRequest): string {
  const db = new Database(path, { readonly: true });
  try {
    return [...exportCsvChunks(new StoreReader(db), req)].join('');
  } finally {
    db.close();
  }
}

beforeAll(() => {
  process.env.CRABWATT_EXPORT_WORKERS = '1';
  const t = tempDir('crabwatt-threaded-');
  cleanup = t.cleanup;
  storePath = join(t.dir, 'e.sqlite');
  store = Store.open(storePath);
  for (const [start, boot] of [[SPRING_START, 1], [AUTUMN_START, 2]] as const) {
    dev = store.attachDevice({ deviceId: 0xabcdn, bootId: boot, fsNum: FS, fsDen: 1, defaultKv: 0.05, defaultKi: 0.004 }, start);
    for (let end = WINDOW_SAMPLES; end <= SPAN_MS; end += WINDOW_SAMPLES) {
      // Power varies window to window, so a row out of place or repeated shows in the text.
      store.addWindow(dev, makeWindow(BigInt(end), WINDOW_SAMPLES, 1_000_000_000n + BigInt(end)), derivedFor(100 + (end % 7919) / 10), start + end);
    }
    store.flush();
  }
  // Three days of 1 s rows (packs only, as the bench builds them): above EXPORT_WORKER_MIN_ROWS.
  benchPath = join(t.dir, 'bench.sqlite');
  ensureYearDb(benchPath, 3);
});

afterAll(() => {
  store?.close();
  cleanup?.();
  if (savedWorkers === undefined) delete process.env.CRABWATT_EXPORT_WORKERS;
  else process.env.CRABWATT_EXPORT_WORKERS = savedWorkers;
});

describe('threaded CSV export', () => {
  it('cuts a range into pieces in order, at whole UTC hours for 1 s rows (one pack each)', () => {
    const req: ExportRequest = { device: dev.hex, fromMs: SPRING_START + 1234, toMs: SPRING_START + SPAN_MS - 5678, interval: '1s', tz: 'Europe/Berlin' };
    const b = exportSegments(req);
    expect(b[0]).toBe(req.fromMs);
    expect(b.at(-1)).toBe(req.toMs);
    expect(b.length).toBe(SPAN_MS / PACK_MS + 1);
    for (let k = 1; k < b.length; k++) expect(b[k]).toBeGreaterThan(b[k - 1]!);
    for (const t of b.slice(1, -1)) expect(t % PACK_MS).toBe(0);
  });

  it('writes exactly the single-threaded text for every interval, across DST changes and in a +05:30 zone', async () => {
    const before = exportWorkers().started;
    let runs = 0;
    for (const tz of ['Europe/Berlin', 'Asia/Kolkata', 'UTC']) {
      for (const interval of EXPORT_INTERVALS) {
        for (const start of [SPRING_START, AUTUMN_START]) {
          // Not on an hour: the first and last segments are partial, and the edge buckets are cut as a single export cuts them.
          const req: ExportRequest = { device: dev.hex, fromMs: start - 86_400_000 + 123_456, toMs: start + SPAN_MS - 3_333_333, interval, tz };
          const expected = single(storePath, req);
          expect(expected.split('\n').length, `${interval} ${tz}`).toBeGreaterThan(2);
          expect(await text(exportCsvInWorker(storePath, req)), `${interval} ${tz}`).toBe(expected);
          if (exportSegments(req).length >= 3) runs++;
        }
      }
    }
    // Each multi-segment export ran a worker of its own, and every one has ended.
    expect(exportWorkers().started - before).toBe(runs);
    expect(runs).toBeGreaterThan(6);
    expect(exportWorkers().running).toBe(0);
  });

  it('ends the worker when the consumer stops early, and the next export is whole', async () => {
    const req: ExportRequest = { device: BENCH_DEVICE, fromMs: DAY0, toMs: DAY0 + 3 * 86_400_000, interval: '1s', tz: 'Europe/Berlin' };
    const it = exportCsvInWorker(benchPath, req);
    const started = exportWorkers().started;
    for (let k = 0; k < 12; k++) expect((await it.next()).done).toBe(false);
    expect(exportWorkers().started).toBe(started + 1);
    expect(exportWorkers().running).toBe(1);
    await it.return(undefined);
    expect(exportWorkers().running).toBe(0);
    const again = await text(exportCsvInWorker(benchPath, req));
    expect(again.length).toBe(single(benchPath, req).length);
    expect(again.split('\n').length - 2).toBe(3 * 86_400 - 3 * 600); // ten minutes a day are missing
  });
});

describe('threaded CSV export over HTTP', () => {
  const devicesFor = (): FakeDevices => {
    const devices = new FakeDevices();
    devices.info = { ...devices.info, id: BENCH_DEVICE };
    devices.get = (id) => (id === BENCH_DEVICE ? devices.info : undefined);
    return devices;
  };

  async function serve(path: string) {
    const db = new Database(path, { readonly: true });
    const app = await buildApp({ store: storeFromReader(new StoreReader(db), path), devices: devicesFor(), live: new EventEmitter() });
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    return {
      url,
      close: async () => {
        await app.close();
        db.close();
      },
    };
  }

  const query = (fromMs: number, toMs: number) => `/api/export.csv?device=${BENCH_DEVICE}&from=${fromMs}&to=${toMs}&interval=1s&tz=Europe/Berlin`;

  /** The body, or how it ended: 'aborted' when the server cut the response. */
  function download(url: string): Promise<{ status: number; body: string; aborted: boolean }> {
    return new Promise((resolve, reject) => {
      http
        .get(url, (res) => {
          const parts: Buffer[] = [];
          res.on('data', (d: Buffer) => parts.push(d));
          res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(parts).toString('latin1'), aborted: false }));
          res.on('aborted', () => resolve({ status: res.statusCode!, body: '', aborted: true }));
          res.on('error', () => resolve({ status: res.statusCode!, body: '', aborted: true }));
        })
        .on('error', reject);
    });
  }

  async function untilNoWorker(): Promise<void> {
    // The server notices the closed socket on its own schedule: wait for it (the test's timeout bounds this).
    while (exportWorkers().running > 0) await new Promise((r) => setTimeout(r, 20));
  }

  it('serves a large export through a worker, byte for byte, and recovers from a client that leaves', async () => {
    const s = await serve(benchPath);
    try {
      const req: ExportRequest = { device: BENCH_DEVICE, fromMs: DAY0, toMs: DAY0 + 3 * 86_400_000, interval: '1s', tz: 'Europe/Berlin' };
      expect(3 * 86_400 - 3 * 600).toBeGreaterThanOrEqual(EXPORT_WORKER_MIN_ROWS);
      const started = exportWorkers().started;
      const whole = await download(`${s.url}${query(req.fromMs, req.toMs)}`);
      expect(whole.status).toBe(200);
      expect(exportWorkers().started).toBe(started + 1);
      expect(whole.body).toBe(single(benchPath, req));

      // A client that goes away after the first bytes.
      await new Promise<void>((resolve, reject) => {
        const r = http.get(`${s.url}${query(req.fromMs, req.toMs)}`, (res) => {
          res.once('data', () => {
            r.destroy();
            resolve();
          });
        });
        r.on('error', () => undefined);
        setTimeout(() => reject(new Error('no data')), 30_000).unref();
      });
      expect(exportWorkers().started).toBe(started + 2);
      await untilNoWorker();
      const next = await download(`${s.url}${query(req.fromMs, req.toMs)}`);
      expect(next.body).toBe(whole.body);
      await untilNoWorker();
    } finally {
      await s.close();
    }
  });

  it('aborts only the response whose worker fails (a corrupt pack), and keeps serving', async () => {
    const path = benchPath.replace(/\.sqlite$/, '-corrupt.sqlite');
    copyFileSync(benchPath, path);
    const w = new Database(path);
    // Hour 1 is in the worker's share (odd segments): its pack claims 3600 rows but holds 8 bytes.
    w.prepare('UPDATE rollup_packs SET data = zeroblob(8) WHERE t_start_ms = ?').run(DAY0 + PACK_MS);
    w.close();
    const s = await serve(path);
    try {
      const started = exportWorkers().started;
      const bad = await download(`${s.url}${query(DAY0, DAY0 + 3 * 86_400_000)}`);
      expect(exportWorkers().started).toBe(started + 1);
      expect(bad.aborted).toBe(true);
      await untilNoWorker();
      // A range without the corrupt hour still exports (single-threaded: it is small), and so does a large one after it.
      const small = await download(`${s.url}${query(DAY0 + 2 * PACK_MS, DAY0 + 3 * PACK_MS)}`);
      expect(small.status).toBe(200);
      expect(small.body.split('\n').length - 2).toBe(3600);
      const large = await download(`${s.url}${query(DAY0 + 2 * PACK_MS, DAY0 + 3 * 86_400_000)}`);
      expect(large.aborted).toBe(false);
      expect(large.body).toBe(single(path, { device: BENCH_DEVICE, fromMs: DAY0 + 2 * PACK_MS, toMs: DAY0 + 3 * 86_400_000, interval: '1s', tz: 'Europe/Berlin' }));
      await untilNoWorker();
    } finally {
      await s.close();
    }
  });
});
