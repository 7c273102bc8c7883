// A database that cannot grow (SQLITE_FULL, made here with max_page_count: the same error a full disk gives)
// must keep what it could not write, say so once, and write it whole once it can.

import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Store, type DeviceIdentity, type WriteHealth } from '../../server/store/store.ts';
import { derivedFor, levelSums, makeWindow, tempDir } from './helpers.ts';

const T0 = Date.UTC(2026, 2, 28, 20, 0, 0);
const identity: DeviceIdentity = { deviceId: 0xd15cf011n, bootId: 3, fsNum: 1000, fsDen: 1, defaultKv: 0.05, defaultKi: 0.004 };

function one(store: Store, sql: string): bigint {
  return BigInt((store.db.prepare(sql).pluck().safeIntegers(true).get() as bigint | null) ?? 0n);
}

describe('Store on a full disk', () => {
  let dir: string;
  let cleanup: () => void;
  beforeEach(() => ({ dir, cleanup } = tempDir()));
  afterEach(() => cleanup());

  it('keeps the failed batch queued, reports the state once, and writes it whole when space is back', () => {
    const changes: WriteHealth[] = [];
    // A long flush interval: only the explicit flushes below write.
    const store = Store.open(join(dir, 'full.sqlite'), { flushIntervalMs: 3_600_000, onWriteHealth: (h) => changes.push(h) });
    const dev = store.attachDevice(identity, T0);
    let end = 0n;
    let windows = 0;
    const add = (count: number): void => {
      for (let k = 0; k < count; k++) {
        end += 200n;
        windows++;
        // Windows spread over several minutes, so retired rollup buckets are part of the failed batches too.
        store.addWindow(dev, makeWindow(end, 200, 1_000_000_000n + BigInt(k)), derivedFor(50), T0 + Number(end) * 10);
      }
    };
    add(200);
    store.flush();
    const pages = Number(store.db.pragma('page_count', { simple: true }));
    store.db.pragma(`max_page_count = ${pages}`);
    add(3000);
    for (let attempt = 0; attempt < 3; attempt++) {
      expect(() => store.flush()).toThrow(/could not write/);
      add(100);
    }
    expect(store.health.state).toBe('disk_full');
    expect(store.health.failedFlushes).toBe(3);
    expect(changes.map((h) => h.state)).toEqual(['disk_full']);
    expect(changes[0]!.detail).toMatch(/full/);
    expect(one(store, 'SELECT count(*) FROM windows')).toBe(200n);

    store.db.pragma('max_page_count = 1073741823');
    store.flush();
    expect(store.health.state).toBe('ok');
    expect(changes.map((h) => h.state)).toEqual(['disk_full', 'ok']);
    // Every window exactly once, and the counter, the windows and every rollup level agree.
    expect(one(store, 'SELECT count(*) FROM windows')).toBe(BigInt(windows));
    expect(one(store, 'SELECT count(DISTINCT end_index) FROM windows')).toBe(BigInt(windows));
    const windowNwh = one(store, 'SELECT sum(energy_nwh) FROM windows');
    expect(one(store, 'SELECT total_nwh FROM devices')).toBe(windowNwh);
    expect(store.totalNwh(dev)).toBe(windowNwh);
    for (const ms of [1000, 60_000, 900_000, 3_600_000, 86_400_000]) expect(levelSums(store.db, ms).energyNwh).toBe(windowNwh);
    store.close();
  });

  it('has no room for more windows only while writes fail and the memory queue is full', () => {
    const store = Store.open(join(dir, 'room.sqlite'), { flushIntervalMs: 3_600_000, onWriteHealth: () => undefined });
    const dev = store.attachDevice(identity, T0);
    store.flush();
    expect(store.hasRoom).toBe(true);
    store.db.pragma(`max_page_count = ${Number(store.db.pragma('page_count', { simple: true }))}`);
    let end = 0n;
    for (let k = 0; k < 3000; k++) store.addWindow(dev, makeWindow((end += 200n), 200, 5n), derivedFor(1), T0);
    expect(() => store.flush()).toThrow(/could not write/);
    expect(store.health.state).toBe('disk_full');
    while (store.hasRoom) store.addWindow(dev, makeWindow((end += 200n), 200, 5n), derivedFor(1), T0);
    expect(store.pending).toBe(65_536);
    store.db.pragma('max_page_count = 1073741823');
    store.flush();
    expect(store.hasRoom).toBe(true);
    expect(one(store, 'SELECT count(*) FROM windows')).toBe(65_536n);
    store.close();
  });
});
