// The batch write binds window rows WINDOWS_PER_INSERT at a time with a multi-row INSERT, and the remainder one
// by one: every row must land exactly as queued, whatever the batch length's remainder.

import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { QUANTITIES } from '../../server/store/schema.ts';
import { Store, WINDOWS_PER_INSERT, windowInsertSql } from '../../server/store/store.ts';
import { derivedFor, makeWindow, tempDir } from './helpers.ts';

describe('batched window INSERT', () => {
  let dir: { dir: string; cleanup: () => void };
  beforeEach(() => {
    dir = tempDir();
  });
  afterEach(() => dir.cleanup());

  it('has one parameter per column per row', () => {
    const columns = 17 + QUANTITIES.length + 1;
    expect(windowInsertSql(1).split('?').length - 1).toBe(columns);
    expect(windowInsertSql(WINDOWS_PER_INSERT).split('?').length - 1).toBe(columns * WINDOWS_PER_INSERT);
  });

  for (const flushRows of [1, WINDOWS_PER_INSERT - 1, WINDOWS_PER_INSERT, 2 * WINDOWS_PER_INSERT + 5]) {
    it(`stores every window exactly with batches of ${flushRows}`, () => {
      const store = Store.open(join(dir.dir, `db-${flushRows}.sqlite`), { flushRows });
      const dev = store.attachDevice({ deviceId: 0xba7cn, bootId: 1, fsNum: 1000, fsDen: 1, defaultKv: 0.1, defaultKi: 0.005 }, 0);
      const n = 3 * WINDOWS_PER_INSERT + 7;
      const expected: { end: bigint; samples: number; sumVi: bigint; p: number; flags: number; energy: bigint }[] = [];
      let end = 0n;
      for (let k = 0; k < n; k++) {
        const samples = 20 + (k % 7);
        end += BigInt(samples);
        const w = makeWindow(end, samples, BigInt(k * 1_000_003 - 40_000_000));
        w.flags = k & 0x0f;
        const booked = store.addWindow(dev, w, derivedFor(k * 1.25 - 30), 1_000_000 + Number(end));
        expect(booked).toBeDefined();
        expected.push({ end, samples, sumVi: w.sum_vi, p: k * 1.25 - 30, flags: w.flags, energy: booked!.energy_nwh });
      }
      store.flush();
      const rows = store.db
        .prepare('SELECT end_index, samples, sum_vi, p, pf, vrms, flags, energy_nwh FROM windows ORDER BY end_index')
        .safeIntegers(true)
        .all() as { end_index: bigint; samples: bigint; sum_vi: bigint; p: number; pf: number | null; vrms: number; flags: bigint; energy_nwh: bigint }[];
      expect(rows).toHaveLength(n);
      rows.forEach((r, k) => {
        const e = expected[k]!;
        expect(r.end_index).toBe(e.end);
        expect(Number(r.samples)).toBe(e.samples);
        expect(r.sum_vi).toBe(e.sumVi);
        expect(r.p).toBe(e.p);
        expect(r.pf).toBeNull();
        expect(r.vrms).toBe(230 + e.p / 1000);
        expect(Number(r.flags)).toBe(e.flags);
        expect(r.energy_nwh).toBe(e.energy);
      });
      store.close();
    });
  }
});
