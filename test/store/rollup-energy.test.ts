// Rollup energy stays exact whichever way the store accumulates it: small per-window energies are summed as
// exact integer doubles, large ones (beyond 2^53 nWh) as BigInt; both kinds mixed in one bucket.

import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { energyNanoWattHours } from '../../server/dsp/derive.ts';
import { ROLLUP_LEVELS } from '../../server/store/schema.ts';
import { Store } from '../../server/store/store.ts';
import { derivedFor, levelSums, makeWindow, rng, tempDir } from './helpers.ts';

describe('rollup energy', () => {
  let dir: { dir: string; cleanup: () => void };
  beforeEach(() => {
    dir = tempDir();
  });
  afterEach(() => dir.cleanup());

  it('equals the windows energy at every level, for window energies on both sides of 2^53 nWh', () => {
    const store = Store.open(join(dir.dir, 'db.sqlite'), { flushRows: 37 });
    // A window beyond 2^53 nWh needs the largest scale the limits allow (kv·ki = 2^-10 ≤ 9.8e-4, docs/dsp.md)
    // and long windows at a low rate: 2^22 samples at 100 Hz with Σ v·i near its bound, samples·2^34 q²,
    // book about 1.2e16 nWh.
    const kv = 2 ** -5;
    const fs = 100;
    const dev = store.attachDevice({ deviceId: 0x5eedn, bootId: 1, fsNum: fs, fsDen: 1, defaultKv: kv, defaultKi: kv }, 0);
    const bigSamples = 2 ** 22;
    expect(Number(energyNanoWattHours(BigInt(bigSamples) << 34n, { kv, ki: kv, fs }))).toBeGreaterThan(2 ** 53 * 1.25);
    const next = rng(11);
    let end = 0n;
    for (let k = 0; k < 500; k++) {
      const big = next() < 0.3;
      const samples = big ? bigSamples : 50;
      end += BigInt(samples);
      // Big: 80 … 100 % of the bound either way; small: well within 2^53 nWh.
      const sign = next() < 0.5 ? -1n : 1n;
      const sumVi = big ? (sign * BigInt(Math.floor((0.8 + 0.2 * next()) * 2 ** 30)) * BigInt(bigSamples)) << 4n : BigInt(Math.floor(next() * 3e6) - 1e6);
      store.addWindow(dev, makeWindow(end, samples, sumVi), derivedFor(1), 1_000_000 + Number(end) * 10);
    }
    store.flush();
    const windowsNwh = store.db.prepare('SELECT sum(energy_nwh) FROM windows').safeIntegers(true).pluck().get() as bigint;
    const bigWindows = store.db.prepare('SELECT count(*) FROM windows WHERE abs(energy_nwh) > 9007199254740991').pluck().get() as number;
    expect(bigWindows).toBeGreaterThan(10);
    expect(windowsNwh).toBe(store.totalNwh(dev));
    for (const level of ROLLUP_LEVELS) {
      // The windows span weeks, so closed hours of the 1 s level are in packs: levelSums reads both.
      expect(levelSums(store.db, level.ms).energyNwh, level.name).toBe(windowsNwh);
    }
    store.close();
  });
});
