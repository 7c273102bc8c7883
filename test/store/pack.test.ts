// Hourly packs of the 1 s rollups (server/store/pack.ts): the writer packs closed hours in the batch that
// closes them, a pack is a faithful copy of its hour's rows, readers fall back to the rows wherever a pack is
// missing or unpackable (also on a read-only database from before the packs), and the export is the same
// byte for byte either way.

import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportCsvChunks, type ExportInterval } from '../../server/export/csv.ts';
import { PACK_MS, PACK_STATS, PACK_STRIDE, packFloats } from '../../server/store/pack.ts';
import { StoreReader } from '../../server/store/query.ts';
import { STATS_BYTES } from '../../server/store/schema.ts';
import { Store, type DeviceRef } from '../../server/store/store.ts';
import { derivedFor, makeWindow, tempDir } from './helpers.ts';

const FS = 1000;
const T0 = Date.UTC(2026, 2, 29, 0, 0, 0); // the Berlin spring DST change is at 01:00Z
const HOURS = 3;

let dir: { dir: string; cleanup: () => void };
let path: string;
let hex: string;

/** 1 s windows over HOURS hours and 20 minutes, with a 5-minute gap in the second hour and varying values. */
function ingest(store: Store, dev: DeviceRef, fromS: number, toS: number): void {
  for (let s = fromS; s < toS; s++) {
    if (s >= 4000 && s < 4300) continue;
    const w = makeWindow(BigInt((s + 1) * FS), FS, BigInt(1_000_000 + ((s * 7919) % 100_000)));
    w.flags = s % 97 === 0 ? 4 : 0;
    store.addWindow(dev, w, derivedFor(500 + 400 * Math.sin(s / 300) + (s % 7) / 3), T0 + (s + 1) * 1000);
  }
}

function exportText(db: Database.Database, interval: ExportInterval, fromMs: number, toMs: number, tz = 'Europe/Berlin'): string {
  return [...exportCsvChunks(new StoreReader(db), { device: hex, fromMs, toMs, interval, tz }, 8192)].join('');
}

beforeAll(() => {
  dir = tempDir('crabwatt-pack-');
  path = join(dir.dir, 'p.sqlite');
  const store = Store.open(path, { flushRows: 1000 });
  const dev = store.attachDevice({ deviceId: 0x9ac4n, bootId: 1, fsNum: FS, fsDen: 1, defaultKv: 0.05, defaultKi: 0.004 }, T0);
  hex = dev.hex;
  ingest(store, dev, 0, HOURS * 3600 + 1200);
  store.close();
});

afterAll(() => dir.cleanup());

describe('rollup packs', () => {
  it('are written for the closed hours only, each a faithful copy of its 1 s rows', () => {
    const db = new Database(path, { readonly: true });
    try {
      const packs = db.prepare('SELECT t_start_ms, rows, data FROM rollup_packs ORDER BY t_start_ms').raw(true).all() as [number, number, Buffer][];
      // Hours 0, 1 and 2 are closed; the fourth (20 minutes in) is still open.
      expect(packs.map((p) => p[0])).toEqual([T0, T0 + PACK_MS, T0 + 2 * PACK_MS]);
      for (const [hour, rows, blob] of packs) {
        const stored = db
          .prepare('SELECT t_start_ms, samples, windows, energy_nwh, flags, stats FROM rollups WHERE level = 1000 AND t_start_ms >= ? AND t_start_ms < ? ORDER BY t_start_ms')
          .raw(true)
          .all(hour, hour + PACK_MS) as [number, number, number, number, number, Buffer][];
        expect(rows).toBe(stored.length);
        expect(rows).toBe(hour === T0 + PACK_MS ? 3300 : 3600);
        const data = packFloats(blob, rows);
        const expected = new Float64Array(rows * PACK_STRIDE);
        stored.forEach((r, k) => {
          const o = k * PACK_STRIDE;
          expected.set([r[0], r[1], r[2], r[3], r[4]], o);
          expected.set(new Float64Array(r[5].buffer.slice(r[5].byteOffset, r[5].byteOffset + STATS_BYTES)), o + PACK_STATS);
        });
        // toEqual compares with Object.is: NaN (undefined min/max) matches NaN, -0 only -0.
        expect(Array.from(data), `hour ${hour}`).toEqual(Array.from(expected));
      }
    } finally {
      db.close();
    }
  });

  it('give the same export as the rows, whole hours and ragged edges, across a DST change', () => {
    const packed = new Database(path, { readonly: true });
    const scratch = join(dir.dir, 'unpacked.sqlite');
    return Promise.resolve(packed.backup(scratch)).then(() => {
      const rowsOnly = new Database(scratch);
      rowsOnly.exec('DELETE FROM rollup_packs');
      try {
        const ranges: [number, number][] = [
          [T0, T0 + (HOURS + 1) * PACK_MS],
          [T0 + 1234_000, T0 + 2 * PACK_MS + 17_000],
          [T0 - 86_400_000, T0 + 86_400_000],
          [T0 + PACK_MS + 600_000, T0 + PACK_MS + 601_000],
        ];
        for (const [from, to] of ranges) {
          for (const interval of ['1s', '1m', '1h'] as const) {
            const a = exportText(packed, interval, from, to);
            const b = exportText(rowsOnly, interval, from, to);
            expect(a.split('\n').length, `${interval} ${from}`).toBeGreaterThan(1);
            expect(a, `${interval} ${from}…${to}`).toBe(b);
          }
        }
        // One row per stored second in the 1 s export, the 5-minute gap absent.
        const all = exportText(packed, '1s', T0, T0 + (HOURS + 1) * PACK_MS).trimEnd().split('\n');
        expect(all.length - 1).toBe(HOURS * 3600 + 1200 - 300);
      } finally {
        rowsOnly.close();
        packed.close();
      }
    });
  });

  it('an unpackable hour (rows 0) is read from its rows', () => {
    const db = new Database(path, { readonly: true });
    const expected = exportText(db, '1s', T0, T0 + 4 * PACK_MS);
    db.close();
    const copy = join(dir.dir, 'marked.sqlite');
    const src = new Database(path, { readonly: true });
    return Promise.resolve(src.backup(copy)).then(() => {
      src.close();
      const marked = new Database(copy);
      marked.prepare("UPDATE rollup_packs SET rows = 0, data = x'' WHERE t_start_ms = ?").run(T0 + PACK_MS);
      expect(exportText(marked, '1s', T0, T0 + 4 * PACK_MS)).toBe(expected);
      marked.close();
    });
  });

  it('a database from before the packs: read-only readers use its rows, the writer packs its closed hours', async () => {
    const copy = join(dir.dir, 'v1.sqlite');
    const src = new Database(path, { readonly: true });
    const expected = exportText(src, '1s', T0, T0 + 4 * PACK_MS);
    await src.backup(copy);
    src.close();
    const old = new Database(copy);
    old.exec('DROP TABLE rollup_packs; PRAGMA user_version = 1;');
    old.close();

    const reader = Store.open(copy, { readonly: true });
    expect(exportText(reader.db, '1s', T0, T0 + 4 * PACK_MS)).toBe(expected);
    reader.close();

    // The writer migrates it, and packs the closed hours as it writes its batches.
    const store = Store.open(copy, { flushRows: 1000 });
    const dev = store.attachDevice({ deviceId: 0x9ac4n, bootId: 1, fsNum: FS, fsDen: 1, defaultKv: 0.05, defaultKi: 0.004 }, T0);
    ingest(store, dev, HOURS * 3600 + 1200, HOURS * 3600 + 1300);
    store.flush();
    const hours = store.db.prepare('SELECT t_start_ms FROM rollup_packs ORDER BY t_start_ms').pluck().all();
    expect(hours).toEqual([T0, T0 + PACK_MS, T0 + 2 * PACK_MS]);
    store.close();
  });

  it('follow the 1 s retention', () => {
    const copy = join(dir.dir, 'retention.sqlite');
    const src = new Database(path, { readonly: true });
    return Promise.resolve(src.backup(copy)).then(() => {
      src.close();
      const now = T0 + 2 * PACK_MS + 1800_000;
      const store = Store.open(copy, { rollupRetentionMs: { '1s': now - (T0 + PACK_MS + 900_000) } });
      store.applyRetention(now);
      // The hour that lost part of its rows has no pack left; hours wholly kept keep theirs.
      const hours = store.db.prepare('SELECT t_start_ms FROM rollup_packs ORDER BY t_start_ms').pluck().all();
      expect(hours).toEqual([T0 + 2 * PACK_MS]);
      const reader = new StoreReader(store.db);
      const lines = [...exportCsvChunks(reader, { device: hex, fromMs: T0, toMs: T0 + 4 * PACK_MS, interval: '1s', tz: 'UTC' })].join('').trimEnd().split('\n');
      expect(lines[1]!.startsWith('2026-03-29T01:15:00Z,')).toBe(true);
      store.close();
    });
  });
});

describe('rollup pack backfill', () => {
  it('packs a backlog of closed hours a few per batch, each hour once, until none is left', () => {
    const d = tempDir('crabwatt-backfill-');
    try {
      const file = join(d.dir, 'b.sqlite');
      // 10 hours of 10 s windows, then the packs removed as if the database came from before them.
      const store = Store.open(file, { flushRows: 100_000 });
      const dev = store.attachDevice({ deviceId: 0xbacfn, bootId: 1, fsNum: FS, fsDen: 1, defaultKv: 0.05, defaultKi: 0.004 }, T0);
      let end = 0;
      const window = () => {
        end += 10 * FS;
        store.addWindow(dev, makeWindow(BigInt(end), 10 * FS, 1_000_000n), derivedFor(100), T0 + end);
      };
      while (end < 10 * 3600 * FS) window();
      store.flush();
      store.db.exec('DELETE FROM rollup_packs');
      store.close();

      const again = Store.open(file, { flushRows: 1 });
      const dev2 = again.attachDevice({ deviceId: 0xbacfn, bootId: 1, fsNum: FS, fsDen: 1, defaultKv: 0.05, defaultKi: 0.004 }, T0);
      const packs = () => again.db.prepare('SELECT t_start_ms FROM rollup_packs ORDER BY t_start_ms').pluck().all() as number[];
      const counts: number[] = [];
      for (let batch = 0; batch < 5; batch++) {
        end += 10 * FS;
        again.addWindow(dev2, makeWindow(BigInt(end), 10 * FS, 1_000_000n), derivedFor(100), T0 + end); // flushRows 1: one batch each
        counts.push(packs().length);
      }
      // Hours 0 … 9 are closed (the window just booked lies in hour 10): four per batch, then nothing more.
      expect(counts).toEqual([4, 8, 10, 10, 10]);
      expect(packs()).toEqual(Array.from({ length: 10 }, (_, k) => T0 + k * PACK_MS));
      const reader = new StoreReader(again.db);
      expect([...exportCsvChunks(reader, { device: dev2.hex, fromMs: T0, toMs: T0 + 11 * PACK_MS, interval: '1s', tz: 'UTC' })].join('').trimEnd().split('\n').length - 1).toBe(
        again.db.prepare('SELECT count(*) FROM rollups WHERE level = 1000').pluck().get() as number,
      );
      again.close();
    } finally {
      d.cleanup();
    }
  });
});
