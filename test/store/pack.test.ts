// Hourly packs of the 1 s rollups (server/store/pack.ts): the writer packs closed hours in the batch that
// closes them and drops their 1 s rows (an hour is in a pack or in rows, never both), a pack holds exactly what
// the windows booked, readers take the union of packs and rows (also on a read-only database from before the
// packs), the export is the same byte for byte whichever way an hour is stored, and a write into a packed hour
// unpacks it first, so nothing is lost or counted twice.

import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportCsvChunks, type ExportInterval } from '../../server/export/csv.ts';
import { PACK_MS, PACK_STATS, PACK_STRIDE, Packer, packFloats } from '../../server/store/pack.ts';
import { StoreReader } from '../../server/store/query.ts';
import { QUANTITIES, ROLLUP_LEVELS } from '../../server/store/schema.ts';
import { Store, type DeviceRef } from '../../server/store/store.ts';
import { derivedFor, levelSums, makeWindow, tempDir } from './helpers.ts';

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

/** Turn every pack of a database back into 1 s rows (as the writer does before a write into a packed hour). */
function unpackAll(db: Database.Database): void {
  const packer = new Packer(db);
  const packs = db.prepare('SELECT device, t_start_ms FROM rollup_packs').raw(true).all() as [number, number][];
  db.transaction(() => {
    for (const [device, hour] of packs) packer.unpackHour(device, hour);
  })();
  expect(db.prepare('SELECT count(*) FROM rollup_packs').pluck().get()).toBe(0);
}

/** A copy of the test database (the original stays as the ingest left it). */
async function copyOf(name: string): Promise<string> {
  const copy = join(dir.dir, name);
  const src = new Database(path, { readonly: true });
  try {
    await src.backup(copy);
  } finally {
    src.close();
  }
  return copy;
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
  it('are written for the closed hours only, hold what the windows booked, and replace the hours\' 1 s rows', () => {
    const db = new Database(path, { readonly: true });
    try {
      const packs = db.prepare('SELECT t_start_ms, rows, data FROM rollup_packs ORDER BY t_start_ms').raw(true).all() as [number, number, Buffer][];
      // Hours 0, 1 and 2 are closed; the fourth (20 minutes in) is still open and stays rows.
      expect(packs.map((p) => p[0])).toEqual([T0, T0 + PACK_MS, T0 + 2 * PACK_MS]);
      const rowsIn = (from: number, to: number) =>
        db.prepare('SELECT count(*) FROM rollups WHERE level = 1000 AND t_start_ms >= ? AND t_start_ms < ?').pluck().get(from, to) as number;
      expect(rowsIn(T0, T0 + 3 * PACK_MS)).toBe(0);
      expect(rowsIn(T0 + 3 * PACK_MS, T0 + 4 * PACK_MS)).toBe(1200);
      // Each 1 s window is one 1 s bucket here, so the windows table is an independent reference for the packs.
      const windows = db
        .prepare(`SELECT t_end_ms, samples, energy_nwh, flags, ${QUANTITIES.join(', ')} FROM windows WHERE t_end_ms > ? AND t_end_ms <= ? ORDER BY t_end_ms`)
        .raw(true);
      for (const [hour, rows, blob] of packs) {
        const stored = windows.all(hour, hour + PACK_MS) as (number | null)[][];
        expect(rows).toBe(stored.length);
        expect(rows).toBe(hour === T0 + PACK_MS ? 3300 : 3600);
        const data = packFloats(blob, rows);
        const expected = new Float64Array(rows * PACK_STRIDE);
        stored.forEach((w, k) => {
          const o = k * PACK_STRIDE;
          const samples = w[1]!;
          expected.set([w[0]! - 1000, samples, 1, w[2]!, w[3]!], o);
          QUANTITIES.forEach((_, q) => {
            const v = w[4 + q];
            const at = o + PACK_STATS + 4 * q;
            if (v === null || v === undefined) expected.set([0, 0, NaN, NaN], at);
            else expected.set([v * samples, samples, v, v], at);
          });
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
      unpackAll(rowsOnly);
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
        // The row count the export estimates from packs and rows alike, ragged edges included.
        for (const db of [packed, rowsOnly]) {
          const reader = new StoreReader(db);
          expect(reader.countSourceRows(hex, '1s', T0, T0 + 4 * PACK_MS)).toBe(HOURS * 3600 + 1200 - 300);
          expect(reader.countSourceRows(hex, '1s', T0 + 1234_000, T0 + 2 * PACK_MS + 17_000)).toBe(2 * PACK_MS / 1000 + 17 - 1234 - 300);
        }
        // History and the energy since an instant read the same from packs as from rows.
        const a = new StoreReader(packed);
        const b = new StoreReader(rowsOnly);
        for (const since of [T0, T0 + 1234_000, T0 + PACK_MS + 3599_000, T0 + 3 * PACK_MS + 5000]) {
          expect(a.energy(hex, since), `since ${since}`).toEqual(b.energy(hex, since));
        }
        const history = (r: StoreReader, fromMs: number, toMs: number, points: number) => r.history({ device: hex, fromMs, toMs, points, fields: ['p', 'vrms'] });
        for (const [from, to, points] of [[T0, T0 + 4 * PACK_MS, 2000], [T0 + 1234_000, T0 + 2 * PACK_MS + 17_000, 3000], [T0 + 600_000, T0 + 601_000 + PACK_MS, 1800]] as const) {
          const h = history(a, from, to, points);
          expect(h.level, `${from}`).toBe('1s');
          expect(h).toEqual(history(b, from, to, points));
        }
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
      // As the writer leaves an unpackable hour: its rows, and a pack marked rows = 0.
      const packer = new Packer(marked);
      const device = marked.prepare('SELECT id FROM devices').pluck().get() as number;
      packer.unpackHour(device, T0 + PACK_MS);
      marked.prepare("INSERT INTO rollup_packs (device, t_start_ms, rows, data) VALUES (?, ?, 0, x'')").run(device, T0 + PACK_MS);
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
    unpackAll(old);
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
    expect(store.db.prepare('SELECT count(*) FROM rollups WHERE level = 1000 AND t_start_ms < ?').pluck().get(T0 + 3 * PACK_MS)).toBe(0);
    expect(exportText(store.db, '1s', T0, T0 + 3 * PACK_MS + 1200_000)).toBe(expected);
    store.close();
  });

  it('migration 3 drops the 1 s rows of hours packed by schema 2, which kept both', async () => {
    const src = new Database(path, { readonly: true });
    const expected = exportText(src, '1s', T0, T0 + 4 * PACK_MS);
    const packs = src.prepare('SELECT device, t_start_ms, rows, data FROM rollup_packs').raw(true).all() as unknown[][];
    const fromPacks = new StoreReader(src);
    const energyAt = (since: number) => fromPacks.energy(hex, since);
    energyAt(T0);
    const copy = await copyOf('v2.sqlite');
    const v2 = new Database(copy);
    // Schema 2 as it was: every hour as rows and, for the closed ones, a pack too; one hour unpackable.
    unpackAll(v2);
    const put = v2.prepare('INSERT INTO rollup_packs (device, t_start_ms, rows, data) VALUES (?, ?, ?, ?)');
    for (const p of packs) put.run(p[1] === T0 + PACK_MS ? [p[0], p[1], 0, Buffer.alloc(0)] : p);
    v2.pragma('user_version = 2');
    const sums = levelSums(v2, 1000);
    expect(sums.buckets).toBe(2 * (HOURS * 3600 + 1200 - 300) - 3300 - 1200);
    v2.close();
    // A reader of the schema 2 file (before a writer migrates it) counts each second once all the same.
    const early = Store.open(copy, { readonly: true });
    const reader = new StoreReader(early.db);
    expect(exportText(early.db, '1s', T0, T0 + 4 * PACK_MS)).toBe(expected);
    expect(reader.countSourceRows(hex, '1s', T0, T0 + 4 * PACK_MS)).toBe(HOURS * 3600 + 1200 - 300);
    expect(reader.energy(hex, T0 + 1234_000)).toEqual(energyAt(T0 + 1234_000));
    early.close();
    src.close();

    const store = Store.open(copy);
    const rowsOf = (hour: number) =>
      store.db.prepare('SELECT count(*) FROM rollups WHERE level = 1000 AND t_start_ms >= ? AND t_start_ms < ?').pluck().get(hour, hour + PACK_MS) as number;
    expect([0, 1, 2, 3].map((h) => rowsOf(T0 + h * PACK_MS))).toEqual([0, 3300, 0, 1200]);
    expect(levelSums(store.db, 1000).buckets).toBe(HOURS * 3600 + 1200 - 300);
    expect(exportText(store.db, '1s', T0, T0 + 4 * PACK_MS)).toBe(expected);
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
      // The hour the cut falls in was unpacked: its seconds from 15 minutes on are kept as rows (the 5-minute
      // gap lies before the cut), the earlier hour is gone whole.
      const rowsIn = (from: number, to: number) =>
        store.db.prepare('SELECT count(*) FROM rollups WHERE level = 1000 AND t_start_ms >= ? AND t_start_ms < ?').pluck().get(from, to) as number;
      expect(rowsIn(T0, T0 + PACK_MS + 900_000)).toBe(0);
      expect(rowsIn(T0 + PACK_MS, T0 + 2 * PACK_MS)).toBe(2700);
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
      unpackAll(store.db);
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
        levelSums(again.db, 1000).buckets,
      );
      // Only the open hour's buckets (the five windows just booked) are rows.
      expect(again.db.prepare('SELECT count(*) FROM rollups WHERE level = 1000').pluck().get()).toBe(5);
      again.close();
    } finally {
      d.cleanup();
    }
  });
});

describe('a write into a packed hour', () => {
  it('unpacks the hour in the same transaction, merges, loses and double-counts nothing; the backfill packs it again', async () => {
    const copy = await copyOf('late.sqlite');
    // Send the epoch's clock back into the packed first hour, as a host clock set back (or a tampered
    // database) would: the store's times are otherwise monotone, so this is the one way to write there.
    const tamper = new Database(copy);
    tamper.prepare('UPDATE epochs SET anchor_index = NULL, anchor_ms = NULL, last_t_ms = ?').run(T0 + 1800_000);
    const before = tamper.prepare('SELECT samples, windows, energy_nwh FROM rollups WHERE level = 1000 AND t_start_ms = ?').get(T0 + 1800_000);
    expect(before).toBeUndefined(); // in the pack, not in the rows
    const packed = packFloats(tamper.prepare('SELECT data FROM rollup_packs WHERE t_start_ms = ?').pluck().get(T0) as Buffer, 3600);
    const old = { samples: packed[1800 * PACK_STRIDE + 1]!, windows: packed[1800 * PACK_STRIDE + 2]!, energy: packed[1800 * PACK_STRIDE + 3]! };
    expect(old.windows).toBe(1);
    tamper.close();

    const store = Store.open(copy, { flushRows: 1 });
    const dev = store.attachDevice({ deviceId: 0x9ac4n, bootId: 1, fsNum: FS, fsDen: 1, defaultKv: 0.05, defaultKi: 0.004 }, T0 + 1800_000);
    let end = BigInt((HOURS * 3600 + 1200) * FS);
    end += BigInt(FS);
    const late = store.addWindow(dev, makeWindow(end, FS, 5_000_000n), derivedFor(700), T0 + 1801_000)!;
    expect(late.t_end_ms).toBe(T0 + 1801_000);
    const exact = () => {
      const windows = store.db.prepare('SELECT sum(energy_nwh) FROM windows').safeIntegers(true).pluck().get() as bigint;
      expect(store.totalNwh(dev)).toBe(windows);
      for (const level of ROLLUP_LEVELS) expect(levelSums(store.db, level.ms).energyNwh, level.name).toBe(windows);
    };
    // The hour is rows again (all 3600 seconds), the late window merged into its second's bucket.
    expect(store.db.prepare('SELECT count(*) FROM rollup_packs WHERE t_start_ms = ?').pluck().get(T0)).toBe(0);
    expect(store.db.prepare('SELECT count(*) FROM rollups WHERE level = 1000 AND t_start_ms >= ? AND t_start_ms < ?').pluck().get(T0, T0 + PACK_MS)).toBe(3600);
    const merged = store.db.prepare('SELECT samples, windows, energy_nwh FROM rollups WHERE level = 1000 AND t_start_ms = ?').get(T0 + 1800_000) as Record<string, number>;
    expect(merged).toEqual({ samples: old.samples + FS, windows: 2, energy_nwh: old.energy + Number(late.energy_nwh) });
    exact();

    // Time moves on (the device's next window ends at T0 + 5 h of its clock): the hours closed since are
    // packed, the unpacked one again.
    end += BigInt((5 * 3600 - 1801) * FS);
    store.addWindow(dev, makeWindow(end, FS, 5_000_000n), derivedFor(700), T0 + 5 * PACK_MS);
    const hours = store.db.prepare('SELECT t_start_ms FROM rollup_packs WHERE rows > 0 ORDER BY t_start_ms').pluck().all();
    expect(hours).toEqual([T0, T0 + PACK_MS, T0 + 2 * PACK_MS, T0 + 3 * PACK_MS]);
    expect(store.db.prepare('SELECT count(*) FROM rollups WHERE level = 1000').pluck().get()).toBe(1);
    exact();
    store.close();
  });
});
