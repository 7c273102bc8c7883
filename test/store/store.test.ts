import { spawnSync } from 'node:child_process';
import { existsSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { energyNanoWattHours } from '../../server/dsp/derive.ts';
import { acquireLock, databaseLockPath, deviceLockPath, LockHeldError } from '../../server/store/lock.ts';
import { ROLLUP_LEVELS } from '../../server/store/schema.ts';
import { Store, type DeviceIdentity, type DeviceRef } from '../../server/store/store.ts';
import { chooseLevel } from '../../server/store/history.ts';
import { StoreReader } from '../../server/store/query.ts';
import { derivedFor, levelSums, makeWindow, rng, tempDir } from './helpers.ts';

const FS = 1000; // 1 kHz keeps a day of windows small; 1 sample = 1 ms
const KV = 0.05;
const KI = 0.004;
const T0 = Date.UTC(2026, 2, 28, 20, 0, 0);
const SCALE = { kv: KV, ki: KI, fs: FS };
const rawToNwh = (raw: bigint, scale: typeof SCALE): bigint => energyNanoWattHours(raw, scale);

function identity(bootId: number): DeviceIdentity {
  return { deviceId: 0xc0ffee00_12345678n, bootId, fsNum: FS, fsDen: 1, defaultKv: KV, defaultKi: KI };
}

interface Fed {
  sumVi: bigint;
  energy: bigint;
  endIndex: bigint;
}

/**
 * Feed `count` windows of random length and energy, with an accumulator snapshot after every `snapEvery`
 * windows; windows whose ordinal is in `drop` are lost (never given to the store). Device time = wall time.
 */
function feed(store: Store, dev: DeviceRef, state: Fed, count: number, seed: number, snapEvery = 5, drop = new Set<number>()): void {
  const next = rng(seed);
  for (let k = 0; k < count; k++) {
    const samples = 200 + Math.floor(next() * 4800);
    const sumVi = BigInt(Math.floor(next() * 6e9) - 1e9);
    state.endIndex += BigInt(samples);
    state.sumVi += sumVi;
    state.energy += sumVi;
    const now = T0 + Number(state.endIndex);
    if (!drop.has(k)) store.addWindow(dev, makeWindow(state.endIndex, samples, sumVi), derivedFor(Number(sumVi) / samples), now);
    if (k % snapEvery === snapEvery - 1) store.addEnergy(dev, { end_index: state.endIndex, energy: state.energy, boot_id: 7 }, now);
  }
}

function sums(store: Store) {
  const db = store.db;
  const one = (sql: string, ...args: unknown[]): bigint => BigInt((db.prepare(sql).pluck().safeIntegers(true).get(...args) as bigint | null) ?? 0n);
  return {
    windows: one('SELECT sum(energy_nwh) FROM windows'),
    gaps: one('SELECT sum(energy_nwh) FROM energy_gaps'),
    total: one('SELECT sum(total_nwh) FROM devices'),
    // The 1 s level: its rows and its packs (closed hours are packed).
    level: (ms: number) => levelSums(db, ms).energyNwh,
    levelSamples: (ms: number) => levelSums(db, ms).samples,
    windowSamples: one('SELECT sum(samples) FROM windows'),
  };
}

describe('Store', () => {
  let dir: string;
  let cleanup: () => void;
  let path: string;
  beforeEach(() => {
    ({ dir, cleanup } = tempDir());
    path = join(dir, 'crabwatt.sqlite');
  });
  afterEach(() => cleanup());

  it('books window energy exactly: Σ windows == every rollup level == counter == nwh(Σ sum_vi)', () => {
    const store = Store.open(path);
    const dev = store.attachDevice(identity(7), T0);
    const state: Fed = { sumVi: 0n, energy: 123_456_789_000n, endIndex: 0n };
    // Start the accumulator at an arbitrary value: the host attached to a device that ran before.
    store.addEnergy(dev, { end_index: 0n, energy: state.energy, boot_id: 7 }, T0);
    feed(store, dev, state, 40_000, 1); // ≈ 29 h: crosses a day boundary and many hours
    store.flush();
    const s = sums(store);
    const expected = rawToNwh(state.sumVi, SCALE);
    expect(s.gaps).toBe(0n);
    expect(s.windows).toBe(expected);
    expect(s.total).toBe(expected);
    expect(store.totalNwh(dev)).toBe(expected);
    for (const level of ROLLUP_LEVELS) {
      expect(s.level(level.ms), level.name).toBe(expected);
      expect(s.levelSamples(level.ms), level.name).toBe(s.windowSamples);
    }
    // The closed hours are packed, their 1 s rows gone: the sums above took the packs.
    const packs = store.db.prepare('SELECT count(*) FROM rollup_packs WHERE rows > 0').pluck().get() as number;
    expect(packs).toBe(Math.floor((T0 + Number(state.endIndex) - 1) / 3_600_000) - Math.floor(T0 / 3_600_000));
    const overlap = store.db
      .prepare('SELECT count(*) FROM rollups r JOIN rollup_packs p ON p.t_start_ms = r.t_start_ms - r.t_start_ms % 3600000 WHERE r.level = 1000')
      .pluck()
      .get() as number;
    expect(overlap).toBe(0);
    const days = store.db.prepare('SELECT count(*) FROM rollups WHERE level = 86400000').pluck().get() as number;
    const lastDay = Math.floor((T0 + Number(state.endIndex) - 1) / 86_400_000);
    expect(days).toBe(lastDay - Math.floor(T0 / 86_400_000) + 1);
    store.close();
  });

  it('books the energy of lost windows as a gap, so the counter equals the accumulator delta', () => {
    const store = Store.open(path);
    const dev = store.attachDevice(identity(7), T0);
    const state: Fed = { sumVi: 0n, energy: 5_000_000n, endIndex: 0n };
    store.addEnergy(dev, { end_index: 0n, energy: state.energy, boot_id: 7 }, T0);
    const drop = new Set([100, 101, 102, 250, 999]);
    feed(store, dev, state, 2000, 2, 5, drop);
    store.flush();
    const s = sums(store);
    const expected = rawToNwh(state.energy - 5_000_000n, SCALE);
    expect(s.gaps).not.toBe(0n);
    expect(s.windows + s.gaps).toBe(expected);
    expect(s.total).toBe(expected);
    for (const level of ROLLUP_LEVELS) expect(s.level(level.ms), level.name).toBe(expected);
    const reasons = store.db.prepare('SELECT DISTINCT reason FROM energy_gaps').pluck().all();
    expect(reasons).toEqual(['windows_lost']);
    store.close();
  });

  it('opens a new epoch at a device reset; the total never goes back and nothing is counted twice', () => {
    const store = Store.open(path);
    let dev = store.attachDevice(identity(7), T0);
    const first: Fed = { sumVi: 0n, energy: 0n, endIndex: 0n };
    feed(store, dev, first, 500, 3);
    const before = store.totalNwh(dev);
    // Reset: new boot id, index and accumulator from zero.
    dev = store.attachDevice(identity(8), T0 + Number(first.endIndex));
    const second: Fed = { sumVi: 0n, energy: 0n, endIndex: 0n };
    const totals: bigint[] = [];
    const next = rng(4);
    for (let k = 0; k < 300; k++) {
      const samples = 1000;
      const sumVi = BigInt(Math.floor(next() * 1e9));
      second.endIndex += BigInt(samples);
      second.sumVi += sumVi;
      store.addWindow(dev, makeWindow(second.endIndex, samples, sumVi), derivedFor(1), T0 + Number(first.endIndex + second.endIndex));
      totals.push(store.totalNwh(dev));
    }
    store.flush();
    expect(totals[0]! >= before).toBe(true);
    for (let k = 1; k < totals.length; k++) expect(totals[k]! >= totals[k - 1]!).toBe(true);
    const epochs = store.db.prepare('SELECT boot_id, reason FROM epochs ORDER BY id').all();
    expect(epochs).toEqual([{ boot_id: 7, reason: 'first' }, { boot_id: 8, reason: 'boot_id' }]);
    const total = sums(store).total;
    expect(total).toBe(rawToNwh(first.sumVi, SCALE) + rawToNwh(second.sumVi, SCALE));
    // A sample index going backwards without a new boot_id (a reset whose identify was missed) also opens one,
    // even when the window ends where a stored one did: its sums differ, so it is no duplicate.
    const storedEnd = BigInt(store.db.prepare('SELECT min(end_index) FROM windows WHERE epoch = 2').pluck().get() as number);
    const before2 = store.totalNwh(dev);
    expect(store.addWindow(dev, makeWindow(storedEnd, 1000, 7n), derivedFor(1), T0 + 10_000_000)).toBeDefined();
    expect(store.totalNwh(dev) >= before2).toBe(true);
    store.flush();
    const last = store.db.prepare('SELECT reason FROM epochs ORDER BY id DESC LIMIT 1').pluck().get();
    expect(last).toBe('index_backwards');
    expect(store.totalNwh(dev) >= total).toBe(true);
    store.close();
  });

  it('is idempotent: re-ingesting frames already stored (also after reopening) books nothing twice', () => {
    const run = (count: number, reopenAfter?: number): bigint => {
      const p = join(dir, `idem-${count}-${reopenAfter ?? 'x'}.sqlite`);
      let store = Store.open(p);
      let dev = store.attachDevice(identity(7), T0);
      const state: Fed = { sumVi: 0n, energy: 0n, endIndex: 0n };
      if (reopenAfter !== undefined) {
        feed(store, dev, state, reopenAfter, 5);
        store.close();
        store = Store.open(p);
        dev = store.attachDevice(identity(7), T0);
      }
      // Replay everything from the start, as a host restarted against a device replaying its frames would.
      const replay: Fed = { sumVi: 0n, energy: 0n, endIndex: 0n };
      feed(store, dev, replay, count, 5);
      feed(store, dev, replay, 0, 5);
      store.flush();
      const total = sums(store).total;
      if (reopenAfter !== undefined) expect(store.counters.duplicates).toBe(reopenAfter);
      const windows = store.db.prepare('SELECT count(*) FROM windows').pluck().get();
      expect(windows).toBe(count);
      store.close();
      return total;
    };
    const once = run(1000);
    expect(run(1000, 400)).toBe(once);
  });

  it('refuses a second writer on the same database with a message naming the holder', () => {
    const store = Store.open(path);
    expect(() => Store.open(path)).toThrow(LockHeldError);
    expect(() => Store.open(path)).toThrow(new RegExp(`pid ${process.pid}`));
    // A reader is fine while the writer runs.
    const reader = Store.open(path, { readonly: true });
    expect(new StoreReader(reader.db).devices()).toEqual([]);
    reader.close();
    store.close();
    Store.open(path).close();
  });

  it('refuses a file that is not a crabwatt database with a clear message', () => {
    writeFileSync(path, 'this is not SQLite, just some text that is long enough to have a header'.repeat(20));
    expect(() => Store.open(path)).toThrow(/not a crabwatt database or is damaged/);
    // The failed open released its lock.
    acquireLock(databaseLockPath(path), 'the next writer').release();
  });

  it('locks a serial device by its real path, so an alias cannot open it twice', () => {
    const target = join(dir, 'ttyACM7');
    writeFileSync(target, '');
    const alias = join(dir, 'usb-crabwatt-if00');
    symlinkSync(target, alias);
    expect(deviceLockPath(alias, dir)).toBe(deviceLockPath(target, dir));
    const held = acquireLock(deviceLockPath(target, dir), `device ${target}`);
    expect(() => acquireLock(deviceLockPath(alias, dir), `device ${alias}`)).toThrow(LockHeldError);
    held.release();
    acquireLock(deviceLockPath(alias, dir), `device ${alias}`).release();
  });

  it('takes the lock of a process that was killed holding it (the OS dropped it)', () => {
    // The child takes the lock with the real acquireLock and dies by SIGKILL: no exit handler runs.
    const child = spawnSync(
      process.execPath,
      ['--import', 'tsx', '-e', `
        const { acquireLock, databaseLockPath } = await import(${JSON.stringify(new URL('../../server/store/lock.ts', import.meta.url).href)});
        acquireLock(databaseLockPath(${JSON.stringify(path)}), 'doomed');
        process.kill(process.pid, 'SIGKILL');`],
      { encoding: 'utf8' },
    );
    expect(child.signal).toBe('SIGKILL');
    expect(existsSync(databaseLockPath(path))).toBe(true);
    const store = Store.open(path);
    store.close();
  });

  it('applies retention to raw windows and keeps rollups', () => {
    const store = Store.open(path, { windowRetentionMs: 3_600_000 });
    const dev = store.attachDevice(identity(7), T0);
    const state: Fed = { sumVi: 0n, energy: 0n, endIndex: 0n };
    feed(store, dev, state, 3000, 6); // ≈ 2.2 h
    store.flush();
    const before = sums(store);
    const deleted = store.applyRetention(T0 + Number(state.endIndex));
    expect(deleted).toBeGreaterThan(0);
    const after = sums(store);
    const oldest = store.db.prepare('SELECT min(t_end_ms) FROM windows').pluck().get() as number;
    expect(oldest).toBeGreaterThanOrEqual(T0 + Number(state.endIndex) - 3_600_000);
    expect(after.level(1000)).toBe(before.level(1000));
    expect(after.total).toBe(before.total);
    store.close();
  });
});

describe('chooseLevel', () => {
  it('reads the coarsest level that still gives every bucket a row', () => {
    expect(chooseLevel(365 * 86_400_000, 2000).level).toBe('1h');
    expect(chooseLevel(86_400_000, 1000).level).toBe('1m');
    expect(chooseLevel(3_600_000, 1000).level).toBe('1s');
    expect(chooseLevel(60_000, 1000).level).toBe('raw');
    expect(chooseLevel(10 * 365 * 86_400_000, 1000).level).toBe('1d');
  });
});

describe('Store.setCalibration', () => {
  it('books energy before a calibration change with the old scale and after it with the new, exactly', () => {
    const { dir, cleanup } = tempDir();
    try {
      const store = Store.open(join(dir, 's.sqlite'));
      let dev = store.attachDevice(identity(7), T0);
      const a: Fed = { sumVi: 0n, energy: 0n, endIndex: 0n };
      feed(store, dev, a, 300, 21);
      dev = store.setCalibration(dev, { v_offset: 0, i_offset: 0, v_gain: 16384, i_gain: 16384, phase: 0 }, KV * 2, KI);
      const b: Fed = { sumVi: 0n, energy: a.energy, endIndex: a.endIndex };
      feed(store, dev, b, 300, 22);
      store.flush();
      const expected = rawToNwh(a.sumVi, SCALE) + rawToNwh(b.sumVi, { ...SCALE, kv: KV * 2 });
      expect(store.totalNwh(dev)).toBe(expected);
      expect(sums(store).windows).toBe(expected);
      store.close();
      // The new scale is the device's from now on, also after a restart.
      const again = Store.open(join(dir, 's.sqlite'));
      expect(again.attachDevice(identity(7), T0).kv).toBe(KV * 2);
      again.close();
    } finally {
      cleanup();
    }
  });
});

describe('StoreReader.history', () => {
  it('folds into at most `points` buckets from the right level, with gaps as null', () => {
    const { dir, cleanup } = tempDir();
    try {
      const store = Store.open(join(dir, 'h.sqlite'));
      const dev = store.attachDevice(identity(7), T0);
      const state: Fed = { sumVi: 0n, energy: 0n, endIndex: 0n };
      feed(store, dev, state, 1500, 7); // ≈ 65 min
      // Two hours of silence, then more.
      state.endIndex += 7_200_000n;
      feed(store, dev, state, 1500, 8);
      store.flush();
      const reader = new StoreReader(store.db);
      const to = T0 + Number(state.endIndex);
      const h = reader.history({ device: dev.hex, fromMs: T0, toMs: to, points: 200, fields: ['p', 'vrms'] });
      expect(h.t.length).toBeLessThanOrEqual(200);
      expect(h.level).toBe('1m');
      const p = h.series.p!;
      expect(p.mean.some((x) => x === null)).toBe(true); // the silence
      // ≈ 250 min in 2-minute buckets: two 65-minute runs of data around 120 minutes of silence.
      expect(h.bucketMs).toBe(120_000);
      expect(p.mean.filter((x) => x !== null).length).toBeGreaterThan(60);
      expect(p.mean.filter((x) => x === null).length).toBeGreaterThan(55);
      for (let b = 0; b < h.t.length; b++) {
        if (p.mean[b] === null) continue;
        expect(p.min[b]!).toBeLessThanOrEqual(p.mean[b]! + 1e-9);
        expect(p.max[b]!).toBeGreaterThanOrEqual(p.mean[b]! - 1e-9);
      }
      expect(h.energyNwh.reduce((a, b) => a + b, 0n)).toBe(store.totalNwh(dev));
      const fine = reader.history({ device: dev.hex, fromMs: T0, toMs: T0 + 60_000, points: 1000, fields: ['p'] });
      expect(fine.level).toBe('raw');
      expect(() => reader.history({ device: 'ffff', fromMs: T0, toMs: to, points: 10, fields: ['p'] })).toThrow(/unknown device/);
      expect(() => reader.history({ device: dev.hex, fromMs: to, toMs: T0, points: 10, fields: ['p'] })).toThrow(/from < to/);
      const energy = reader.energy(dev.hex, T0);
      expect(energy.sinceNwh).toBe(store.totalNwh(dev));
      expect(energy.totalNwh).toBe(store.totalNwh(dev));
      // From the middle of an hour: the partial hour from 1 s buckets, the rest from 1 h buckets, exactly.
      const since = T0 + 1_800_000 + 500;
      const fromSecond = Math.ceil(since / 1000) * 1000;
      const expectedSince = BigInt(
        store.db.prepare('SELECT sum(energy_nwh) FROM windows WHERE t_end_ms - 1 >= ?').pluck().safeIntegers(true).get(fromSecond) as bigint,
      );
      expect(reader.energy(dev.hex, since).sinceNwh).toBe(expectedSince);
      store.close();
    } finally {
      cleanup();
    }
  });
});
