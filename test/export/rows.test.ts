// The export's rows against an independent rendering: every 1 s row of a store (the direct path from packed
// records) and every 1 min row (the fold) equal the text built here from the stored rows with Bucket (the
// reference fold), IsoFormatter-style timestamps from luxon, formatSig9 and nwhToWhString. Timestamps are
// checked against luxon for instants all over the year in zones with odd offsets and DST rules.

import { join } from 'node:path';
import { DateTime } from 'luxon';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CSV_HEADER, exportCsvChunks, instantFormatter } from '../../server/export/csv.ts';
import { windowFlagNames } from '../../server/protocol/window-flags.ts';
import { formatSig9 } from '../../server/export/csv-writer.ts';
import { nwhToWhString } from '../../server/store/energy.ts';
import { Bucket } from '../../server/store/fold.ts';
import { StoreReader } from '../../server/store/query.ts';
import { QUANTITIES } from '../../server/store/schema.ts';
import { Store, type Derived } from '../../server/store/store.ts';
import { makeWindow, rng, tempDir } from '../store/helpers.ts';

const FS = 1000;
const T0 = Date.UTC(2026, 9, 25, 0, 0, 0); // Berlin leaves DST at 01:00Z
const SECONDS = 2 * 3600 + 500;

let dir: { dir: string; cleanup: () => void };
let store: Store;
let reader: StoreReader;
let hex: string;

const luxonIso = (tz: string, withMs: boolean, tMs: number): string => {
  const dt = DateTime.fromMillis(tMs, { zone: tz });
  return dt.toFormat(withMs ? "yyyy-MM-dd'T'HH:mm:ss.SSS" : "yyyy-MM-dd'T'HH:mm:ss") + (dt.offset === 0 ? 'Z' : dt.toFormat('ZZ'));
};

beforeAll(() => {
  dir = tempDir('crabwatt-export-rows-');
  store = Store.open(join(dir.dir, 'r.sqlite'), { flushRows: 2000 });
  const dev = store.attachDevice({ deviceId: 0x5107n, bootId: 1, fsNum: FS, fsDen: 1, defaultKv: 0.05, defaultKi: 0.004 }, T0);
  hex = dev.hex;
  const next = rng(7);
  // Windows of 250…750 ms, so a second holds one to four of them, with gaps, undefined quantities and flags.
  let end = 0;
  while (end < SECONDS * FS) {
    const samples = 250 + Math.floor(next() * 500);
    end += samples;
    if (next() < 0.02) continue; // a lost window
    const d = Object.fromEntries(QUANTITIES.map((q) => [q, (next() - 0.3) * 10 ** Math.floor(next() * 8 - 3)])) as Derived;
    if (next() < 0.1) d.pf = null;
    if (next() < 0.05) d.freq_hz = null;
    const w = makeWindow(BigInt(end), samples, BigInt(Math.floor((next() - 0.2) * 1e9)));
    w.flags = next() < 0.05 ? 1 << Math.floor(next() * 6) : 0;
    store.addWindow(dev, w, d, T0 + end);
  }
  store.flush();
  reader = new StoreReader(store.db);
});

afterAll(() => {
  store.close();
  dir.cleanup();
});

function expectedRows(level: '1s' | '1m', tz: string, fromMs: number, toMs: number): string[] {
  const lengthMs = level === '1s' ? 1000 : 60_000;
  const buckets = new Map<number, Bucket>();
  for (const row of reader.sourceRows(hex, level, fromMs, toMs)) {
    const b = buckets.get(row.tMs) ?? new Bucket();
    b.add(row);
    buckets.set(row.tMs, b);
  }
  const f = (x: number | null): string => (x === null ? '' : formatSig9(x));
  const [VRMS, IRMS, P, S, PF, N, FREQ, VDC, IDC] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  return [...buckets].map(([t, b]) =>
    [luxonIso(tz, false, t), f(b.mean(VRMS)), f(b.mean(IRMS)), f(b.mean(P)), f(b.minOf(P)), f(b.maxOf(P)), f(b.mean(S)), f(b.mean(PF)),
      f(b.mean(N)), f(b.mean(FREQ)), f(b.mean(VDC)), f(b.mean(IDC)), nwhToWhString(b.energyNwh), String(b.samples),
      formatSig9(b.samples / ((lengthMs / 1000) * FS)), String(b.flags), windowFlagNames(b.flags).join('|')].join(','),
  );
}

describe('export rows', () => {
  for (const tz of ['Europe/Berlin', 'Asia/Kathmandu', 'America/St_Johns', 'UTC']) {
    it(`1 s and 1 min rows equal the reference rendering in ${tz}`, () => {
      for (const level of ['1s', '1m'] as const) {
        const from = T0 + 1_000;
        const to = T0 + SECONDS * 1000 - 120_000;
        const got = [...exportCsvChunks(reader, { device: hex, fromMs: from, toMs: to, interval: level, tz }, 4096)].join('').trimEnd().split('\n');
        expect(got[0]).toBe(CSV_HEADER);
        // 1 min buckets are whole minutes in these zones: read exactly the minutes whose start is in range.
        const expected = level === '1s' ? expectedRows('1s', tz, from, to) : expectedRows('1m', tz, Math.ceil(from / 60_000) * 60_000, to);
        expect(got.length - 1, `${level} ${tz}`).toBe(expected.length);
        for (let k = 0; k < expected.length; k++) {
          if (got[k + 1] !== expected[k]) expect(got[k + 1], `${level} ${tz} row ${k}`).toBe(expected[k]);
        }
      }
    });
  }

  it('writes timestamps as luxon does, with and without milliseconds, in order and at random', () => {
    const next = rng(99);
    for (const tz of ['Europe/Berlin', 'America/New_York', 'Asia/Kolkata', 'Asia/Kathmandu', 'Australia/Lord_Howe', 'America/St_Johns', 'UTC']) {
      const random = Array.from({ length: 1500 }, () => Date.UTC(2020, 0, 1) + Math.floor(next() * 10 * 365 * 86_400_000));
      // Across every transition of 2026 in steps of 1.7 s (so that the milliseconds vary too), in order.
      const around: number[] = [];
      const offset = (t: number) => DateTime.fromMillis(t, { zone: tz }).offset;
      for (let day = Date.UTC(2026, 0, 1); day < Date.UTC(2027, 0, 1); day += 86_400_000) {
        if (offset(day) === offset(day + 86_400_000)) continue;
        for (let t = day; t < day + 86_400_000; t += 900_000) {
          if (offset(t) !== offset(t + 900_000)) for (let ms = -1_200_000; ms <= 2_100_000; ms += 1_300) around.push(t + ms);
        }
      }
      if (tz !== 'UTC' && tz !== 'Asia/Kolkata' && tz !== 'Asia/Kathmandu') expect(around.length, tz).toBeGreaterThan(0);
      for (const withMs of [false, true]) {
        for (const instants of [random, [...random].sort((a, b) => a - b), around]) {
          const format = instantFormatter(tz, withMs);
          for (const t of instants) {
            const got = format(t);
            if (got !== luxonIso(tz, withMs, t)) expect(got, `${tz} ${t}`).toBe(luxonIso(tz, withMs, t));
          }
        }
      }
    }
  });
});
