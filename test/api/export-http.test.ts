// The CSV export over real HTTP from a store on disk (server/export/pipe.ts behind the route): the body is the
// export's text byte for byte; a client that leaves mid-download releases the export and the next one works; a
// failure mid-stream (a corrupt pack) cuts that response (no final chunk, never a short 200) and the server
// keeps serving.

import { EventEmitter } from 'node:events';
import { copyFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../server/api/app.ts';
import { BENCH_DEVICE, ensureYearDb } from '../../server/api/bench.ts';
import { storeFromReader } from '../../server/api/wire.ts';
import { exportCsvChunks, type ExportRequest } from '../../server/export/csv.ts';
import { PACK_MS } from '../../server/store/pack.ts';
import { StoreReader } from '../../server/store/query.ts';
import { tempDir } from '../store/helpers.ts';
import { FakeDevices } from './fakes.ts';

const DAY0 = Date.UTC(2025, 0, 1);

let cleanup: () => void;
let benchPath: string;

function single(path: string, req: ExportRequest): string {
  const db = new Database(path, { readonly: true });
  try {
    return [...exportCsvChunks(new StoreReader(db), req)].join('');
  } finally {
    db.close();
  }
}

beforeAll(() => {
  const t = tempDir('crabwatt-export-http-');
  cleanup = t.cleanup;
  // Three days of 1 s rows, packs only, as the bench builds them: ~35 MB of CSV, hundreds of pipe slots.
  benchPath = join(t.dir, 'bench.sqlite');
  ensureYearDb(benchPath, 3);
});

afterAll(() => cleanup?.());

const devicesFor = (): FakeDevices => {
  const devices = new FakeDevices();
  devices.info = { ...devices.info, id: BENCH_DEVICE };
  devices.get = (id) => (id === BENCH_DEVICE ? devices.info : undefined);
  return devices;
};

/** A server as `crabwatt serve` wires it: exports read on their own connection to the file. */
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
function download(url: string): Promise<{ status: number; body: string; aborted: boolean; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        const parts: Buffer[] = [];
        const done = (aborted: boolean) => resolve({ status: res.statusCode!, body: aborted ? '' : Buffer.concat(parts).toString('latin1'), aborted, headers: res.headers });
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => done(false));
        res.on('aborted', () => done(true));
        res.on('error', () => done(true));
      })
      .on('error', reject);
  });
}

describe('CSV export over HTTP', () => {
  it('sends the export byte for byte, and recovers from a client that leaves', async () => {
    const s = await serve(benchPath);
    try {
      const req: ExportRequest = { device: BENCH_DEVICE, fromMs: DAY0, toMs: DAY0 + 3 * 86_400_000, interval: '1s', tz: 'Europe/Berlin' };
      const whole = await download(`${s.url}${query(req.fromMs, req.toMs)}`);
      expect(whole.status).toBe(200);
      expect(whole.headers['content-type']).toBe('text/csv; charset=utf-8');
      expect(whole.headers['content-disposition']).toMatch(/^attachment; filename="crabwatt-bebebebebebebebe-2025-01-01T000000Z-2025-01-04T000000Z-1s\.csv"$/);
      const expected = single(benchPath, req);
      expect(expected.length).toBeGreaterThan(20 * 1024 * 1024);
      expect(whole.body).toBe(expected);

      // A client that goes away after the first bytes, twice (each export holds a connection and a statement).
      for (let k = 0; k < 2; k++) {
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
      }
      const next = await download(`${s.url}${query(req.fromMs, req.toMs)}`);
      expect(next.body).toBe(expected);
    } finally {
      await s.close();
    }
  });

  it('cuts only the response whose export fails mid-stream (a corrupt pack), and keeps serving', async () => {
    const path = benchPath.replace(/\.sqlite$/, '-corrupt.sqlite');
    copyFileSync(benchPath, path);
    const w = new Database(path);
    // Hour 30: its pack claims 3600 rows but holds 8 bytes, found long after the headers went out.
    w.prepare('UPDATE rollup_packs SET data = zeroblob(8) WHERE t_start_ms = ?').run(DAY0 + 30 * PACK_MS);
    w.close();
    const s = await serve(path);
    try {
      const bad = await download(`${s.url}${query(DAY0, DAY0 + 3 * 86_400_000)}`);
      expect(bad.status).toBe(200);
      expect(bad.aborted).toBe(true);
      // A range without the corrupt hour still exports, and so does one after the failure.
      const small = await download(`${s.url}${query(DAY0 + 2 * PACK_MS, DAY0 + 3 * PACK_MS)}`);
      expect(small.status).toBe(200);
      expect(small.body.split('\n').length - 2).toBe(3600);
      const large = await download(`${s.url}${query(DAY0 + 31 * PACK_MS, DAY0 + 3 * 86_400_000)}`);
      expect(large.aborted).toBe(false);
      expect(large.body).toBe(single(path, { device: BENCH_DEVICE, fromMs: DAY0 + 31 * PACK_MS, toMs: DAY0 + 3 * 86_400_000, interval: '1s', tz: 'Europe/Berlin' }));
    } finally {
      await s.close();
    }
  });
});
