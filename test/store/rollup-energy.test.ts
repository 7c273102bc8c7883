// Rollup energy stays exact whichever way the store accumulates it: small per-window energies are summed as
// exact integer doubles, large ones (beyond 2^53 nWh) as BigInt; both kinds mixed in one bucket.

import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { energyNanoWattHours } from '../../server/dsp/derive.ts';
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
    // 1 kV and 1 kA per LSB at 1 kHz: a Σ v·i of 10^8 is some 10^15…10^16 nWh (the factor depends on the
    // units of the sums, docs/dsp.md), so the big windows are scaled to land well beyond 2^53 nWh.
    const per1e8 = Number(energyNanoWattHours(10n ** 8n, { kv: 1000, ki: 1000, fs: 1000 }));
    const bigScale = Math.max(1, Math.ceil(2.7e16 / per1e8));
    const dev = store.attachDevice({ deviceId: 0x5eedn, bootId: 1, fsNum: 1000, fsDen: 1, defaultKv: 1000, defaultKi: 1000 }, 0);
    const next = rng(11);
    let end = 0n;
    for (let k = 0; k < 500; k++) {
      end += 50n;
      const big = next() < 0.3;
      const sumVi = big ? BigInt(Math.floor(next() * 3e8) - 1e8) * BigInt(bigScale) : BigInt(Math.floor(next() * 3e6) - 1e6);
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
