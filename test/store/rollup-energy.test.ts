// Rollup energy stays exact whichever way the store accumulates it: small per-window energies are summed as
// exact integer doubles, large ones (beyond 2^53 nWh) as BigInt; both kinds mixed in one bucket.

import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ROLLUP_LEVELS } from '../../server/store/schema.ts';
import { Store } from '../../server/store/store.ts';
import { derivedFor, makeWindow, rng, tempDir } from './helpers.ts';

describe('rollup energy', () => {
  let dir: { dir: string; cleanup: () => void };
  beforeEach(() => {
    dir = tempDir();
  });
  afterEach(() => dir.cleanup());

  it('equals the windows energy at every level, for window energies on both sides of 2^53 nWh', () => {
    const store = Store.open(join(dir.dir, 'db.sqlite'), { flushRows: 37 });
    // 1 kV and 1 kA per LSB at 1 kHz: Σ v·i = 10^7 is ~2.8·10^15 nWh, 10^8 already beyond 2^53.
    const dev = store.attachDevice({ deviceId: 0x5eedn, bootId: 1, fsNum: 1000, fsDen: 1, defaultKv: 1000, defaultKi: 1000 }, 0);
    const next = rng(11);
    let end = 0n;
    for (let k = 0; k < 500; k++) {
      end += 50n;
      const big = next() < 0.3;
      const sumVi = BigInt(Math.floor(next() * (big ? 3e8 : 3e6)) - (big ? 1e8 : 1e6));
      store.addWindow(dev, makeWindow(end, 50, sumVi), derivedFor(1), 1_000_000 + Number(end));
    }
    store.flush();
    const windowsNwh = store.db.prepare('SELECT sum(energy_nwh) FROM windows').safeIntegers(true).pluck().get() as bigint;
    const bigWindows = store.db.prepare('SELECT count(*) FROM windows WHERE abs(energy_nwh) > 9007199254740991').pluck().get() as number;
    expect(bigWindows).toBeGreaterThan(10);
    expect(windowsNwh).toBe(store.totalNwh(dev));
    for (const level of ROLLUP_LEVELS) {
      const rollupNwh = store.db.prepare('SELECT sum(energy_nwh) FROM rollups WHERE level = ?').safeIntegers(true).pluck().get(level.ms) as bigint;
      expect(rollupNwh, level.name).toBe(windowsNwh);
    }
    store.close();
  });
});
