// The event log: calibration changes logged in their own transaction, a disk-full period logged as one entry
// once writes get through again, and what the store records anyway (device resets, energy gaps, stretches
// without data) listed with them.

import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readEvents } from '../../server/store/events.ts';
import { Store, type DeviceIdentity } from '../../server/store/store.ts';
import { derivedFor, makeWindow, tempDir } from './helpers.ts';

const T0 = Date.UTC(2026, 10, 20, 8);
const identity = (bootId: number): DeviceIdentity => ({ deviceId: 0xc0ffee00_0000e7e7n, bootId, fsNum: 1000, fsDen: 1, defaultKv: 0.05, defaultKi: 0.004 });

let dir: ReturnType<typeof tempDir>;
beforeEach(() => {
  dir = tempDir();
});
afterEach(() => dir.cleanup());

const all = (store: Store) => readEvents(store.db, 1, 0, Date.UTC(2100, 0, 1), 1000);

describe('event log', () => {
  it('logs a calibration change in the transaction that makes it, with the values before and after', () => {
    const store = Store.open(join(dir.dir, 'c.sqlite'), { flushIntervalMs: 3_600_000 });
    const dev = store.attachDevice(identity(1), T0);
    const regs = { v_offset: 3, i_offset: -2, v_gain: 16500, i_gain: 16300, phase: 12 };
    store.setCalibration(dev, regs, 0.051, 0.0041);
    const cal = all(store).filter((e) => e.kind === 'calibration');
    expect(cal.length).toBe(1);
    expect(JSON.parse(cal[0]!.detail)).toMatchObject({ from: { kv: 0.05, ki: 0.004 }, to: { ...regs, kv: 0.051, ki: 0.0041 } });
    store.close();
  });

  it('lists one kind only when asked, so frequent events cannot crowd a rare one out of the limit', () => {
    const store = Store.open(join(dir.dir, 'kind.sqlite'), { flushIntervalMs: 3_600_000 });
    const dev = store.attachDevice(identity(1), T0);
    store.setCalibration(dev, { v_offset: 0, i_offset: 0, v_gain: 16500, i_gain: 16384, phase: 0 }, 0.05, 0.004);
    const later = Date.now() + 60_000;
    for (let k = 0; k < 10; k++) store.recordEvent(k % 2 ? 'link_connected' : 'link_disconnected', dev.hex, later + k * 1000, 'link');
    store.flush();
    const to = later + 3_600_000;
    expect(readEvents(store.db, 1, 0, to, 5).map((e) => e.kind)).not.toContain('calibration');
    const cal = readEvents(store.db, 1, 0, to, 5, 'calibration');
    expect(cal.map((e) => e.kind)).toEqual(['calibration']);
    expect(readEvents(store.db, 1, 0, to, 50, 'device_first_seen').map((e) => e.kind)).toEqual(['device_first_seen']);
    expect(readEvents(store.db, 1, 0, to, 50, 'no_data')).toEqual([]);
    store.close();
  });

  it('logs a disk-full period once, from when writes failed to when they got through, and loses no window', () => {
    const store = Store.open(join(dir.dir, 'full.sqlite'), { flushIntervalMs: 3_600_000, onWriteHealth: () => undefined });
    const dev = store.attachDevice(identity(1), T0);
    let end = 0n;
    const add = (count: number) => {
      for (let k = 0; k < count; k++) {
        end += 200n;
        store.addWindow(dev, makeWindow(end, 200, 1_000_000_000n), derivedFor(50), T0 + Number(end) * 10);
      }
    };
    add(200);
    store.flush();
    store.db.pragma(`max_page_count = ${Number(store.db.pragma('page_count', { simple: true }))}`);
    add(3000);
    expect(() => store.flush()).toThrow(/could not write/);
    const since = store.health.sinceMs;
    expect(store.health.state).toBe('disk_full');
    store.db.pragma('max_page_count = 1073741823');
    store.flush();
    expect(store.health.state).toBe('ok');
    store.flush(); // the period's entry goes with the next batch
    const full = all(store).filter((e) => e.kind === 'disk_full');
    expect(full.length).toBe(1);
    expect(full[0]!.tMs).toBe(since);
    expect(full[0]!.untilMs).toBeGreaterThanOrEqual(since);
    expect(full[0]!.detail).toMatch(/full/);
    expect(store.db.prepare('SELECT count(*) FROM windows').pluck().get()).toBe(3200);
    store.close();
  });

  it('lists resets, energy gaps, stretches without data and host events, newest first, and keeps them across a restart', () => {
    const path = join(dir.dir, 'e.sqlite');
    let store = Store.open(path, { flushIntervalMs: 3_600_000 });
    let dev = store.attachDevice(identity(1), T0);
    store.recordEvent('serve_start', null, T0, 'crabwatt serve started (device sim)');
    let end = 0n;
    let acc = 0n;
    const add = (count: number, lose = -1) => {
      for (let k = 0; k < count; k++) {
        end += 1000n;
        acc += 5_000_000n;
        if (k !== lose) store.addWindow(dev, makeWindow(end, 1000, 5_000_000n), derivedFor(50), T0 + Number(end));
        if (k % 10 === 9) store.addEnergy(dev, { end_index: end, energy: acc, boot_id: 1 }, T0 + Number(end));
      }
    };
    add(300, 125); // 5 min, one window lost
    end += 600_000n; // 10 min of silence (the device kept counting: a gap of energy too)
    add(120);
    store.recordEvent('link_reconnecting', dev.hex, T0 + Number(end), 'serial port closed');
    store.close();
    store = Store.open(path, { flushIntervalMs: 3_600_000 });
    dev = store.attachDevice(identity(2), T0 + 3_600_000);
    store.flush();
    const kinds = all(store).map((e) => e.kind);
    expect(kinds[0]).toBe('device_reset');
    expect(kinds).toContain('link_reconnecting');
    expect(kinds).toContain('serve_start');
    expect(kinds).toContain('device_first_seen');
    expect(kinds.filter((k) => k === 'energy_gap').length).toBeGreaterThanOrEqual(1);
    const hole = all(store).find((e) => e.kind === 'no_data')!;
    expect(hole.untilMs! - hole.tMs).toBeGreaterThanOrEqual(9 * 60_000);
    expect(hole.tMs).toBeGreaterThanOrEqual(T0 + 300_000);
    expect(hole.untilMs).toBeLessThanOrEqual(T0 + 300_000 + 660_000);
    const times = all(store).map((e) => e.tMs);
    expect(times).toEqual([...times].sort((a, b) => b - a));
    store.close();
  });
});
