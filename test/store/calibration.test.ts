// The store's side of issue 10 items 5 and 6: a calibration is stored whole or not at all, survives identify
// frames and restarts, a stored scale an older version let in cannot wedge ingest, and nothing a device sends
// can overflow or wrap the counter.

import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { energyNanoWattHours } from '../../server/dsp/derive.ts';
import { Store, StoreError, type DeviceIdentity } from '../../server/store/store.ts';
import { derivedFor, makeWindow, tempDir } from './helpers.ts';

const FS = 4_000_000;
const KV = 400 / 8192;
const KI = 40 / 8192;
const T0 = Date.UTC(2026, 5, 1);
const DEFAULT_REGISTERS = { v_offset: 0, i_offset: 0, v_gain: 16384, i_gain: 16384, phase: 0 };
const REGISTERS = { v_offset: 12, i_offset: -7, v_gain: 16500, i_gain: 16200, phase: 3000 };

function identity(bootId: number): DeviceIdentity {
  return { deviceId: 0xca11_b4a7n, bootId, fsNum: FS, fsDen: 1, defaultKv: KV, defaultKi: KI, calibration: DEFAULT_REGISTERS };
}

/** A realistic 10-cycle window: 800 000 samples of ~230 V and ~10 A in q. */
const SUM_VI = 800_000n * 4_000_000n;

describe('store calibration', () => {
  let dir: string;
  let cleanup: () => void;
  let path: string;
  beforeEach(() => {
    ({ dir, cleanup } = tempDir());
    path = join(dir, 'cal.sqlite');
  });
  afterEach(() => cleanup());

  /** Books `count` windows from `end`; returns the new end. */
  function feed(store: Store, dev: ReturnType<Store['attachDevice']>, end: bigint, count: number): bigint {
    for (let k = 0; k < count; k++) {
      end += 800_000n;
      store.addWindow(dev, makeWindow(end, 800_000, SUM_VI), derivedFor(1000), T0 + Number(end / 4000n));
    }
    return end;
  }

  it('keeps the calibration the host stored when the device reports other registers, also after a restart', () => {
    let store = Store.open(path);
    let dev = store.attachDevice(identity(1), T0);
    expect(dev.calibration).toEqual(DEFAULT_REGISTERS);
    dev = store.setCalibration(dev, REGISTERS, KV * 1.01, KI);
    // A reset brings the registers back to the gateware's defaults; what is stored is what the host pushes.
    dev = store.attachDevice(identity(2), T0 + 1000);
    expect(dev.calibration).toEqual(REGISTERS);
    store.close();
    store = Store.open(path);
    dev = store.attachDevice(identity(3), T0 + 2000);
    expect(dev).toMatchObject({ calibration: REGISTERS, kv: KV * 1.01, ki: KI });
    store.close();
  });

  it('changes nothing when storing the calibration fails, and books on at the old scale', () => {
    const store = Store.open(path);
    let dev = store.attachDevice(identity(1), T0);
    let end = feed(store, dev, 0n, 5);
    store.flush();
    store.db.exec(`CREATE TRIGGER refuse BEFORE UPDATE OF calibration ON devices BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END`);
    expect(() => store.setCalibration(dev, REGISTERS, KV * 2, KI)).toThrow(StoreError);
    end = feed(store, dev, end, 5);
    store.flush();
    const scale = { kv: KV, ki: KI, fs: FS };
    expect(store.totalNwh(dev)).toBe(energyNanoWattHours(10n * SUM_VI, scale));
    store.db.exec('DROP TRIGGER refuse');
    dev = store.setCalibration(dev, REGISTERS, KV * 2, KI);
    feed(store, dev, end, 5);
    store.flush();
    const total = energyNanoWattHours(10n * SUM_VI, scale) + energyNanoWattHours(5n * SUM_VI, { ...scale, kv: KV * 2 });
    expect(store.totalNwh(dev)).toBe(total);
    const rows = store.db.prepare('SELECT sum(energy_nwh) FROM windows').safeIntegers(true).pluck().get() as bigint;
    expect(rows).toBe(total);
    expect(store.db.prepare('SELECT kv FROM devices').pluck().get()).toBe(KV * 2);
    store.close();
  });

  it('falls back from a stored scale that cannot be used, says so, and ingests', () => {
    let store = Store.open(path);
    store.attachDevice(identity(1), T0);
    store.close();
    const raw = new Database(path);
    raw.prepare('UPDATE devices SET kv = 1e6, ki = 1e6').run();
    raw.prepare('UPDATE epochs SET scale_kv = 1e6, scale_ki = 1e6').run();
    raw.close();
    const warnings: string[] = [];
    store = Store.open(path, { onWarning: (m) => warnings.push(m) });
    const dev = store.attachDevice(identity(1), T0 + 1000);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/stored scale cannot be used .*kv·ki = 1000000000000 is above.*using kv = 0\.048828125, ki = 0\.0048828125/);
    expect(dev).toMatchObject({ kv: KV, ki: KI });
    feed(store, dev, 0n, 3);
    store.flush();
    expect(store.totalNwh(dev)).toBe(energyNanoWattHours(3n * SUM_VI, { kv: KV, ki: KI, fs: FS }));
    store.close();
  });

  it('refuses a window no conforming device can send, and books the one at the bound', () => {
    const store = Store.open(path);
    const dev = store.attachDevice(identity(1), T0);
    const at = (samples: number, over: Partial<ReturnType<typeof makeWindow>>) => ({ ...makeWindow(BigInt(samples), samples, 0n), ...over });
    const bound = 1000n << 34n;
    expect(() => store.addWindow(dev, at(1000, { sum_vi: bound + 1n }), derivedFor(1), T0)).toThrow(/sum_vi .* not from a conforming device/);
    expect(() => store.addWindow(dev, at(1000, { sum_vv: -1n }), derivedFor(1), T0)).toThrow(/sum_vv/);
    expect(() => store.addWindow(dev, at(1000, { sum_v: 1000n * 2n ** 17n + 1n }), derivedFor(1), T0)).toThrow(/sum_v /);
    expect(() => store.addWindow(dev, at(2 ** 24 + 1, {}), derivedFor(1), T0)).toThrow(/samples; a device sends 1 … 16777216/);
    expect(store.totalNwh(dev)).toBe(0n);
    expect(store.addWindow(dev, at(1000, { sum_vi: -bound }), derivedFor(1), T0)?.energy_nwh).toBe(
      energyNanoWattHours(-bound, { kv: KV, ki: KI, fs: FS }),
    );
    store.close();
  });

  it('refuses an accumulator snapshot that grew faster than the samples allow: no gap', () => {
    const store = Store.open(path);
    const dev = store.attachDevice(identity(1), T0);
    store.addEnergy(dev, { end_index: 1000n, energy: 5n, boot_id: 1 }, T0);
    const most = 1000n << 34n;
    expect(() => store.addEnergy(dev, { end_index: 2000n, energy: 5n + most + 1n, boot_id: 1 }, T0)).toThrow(/not from a conforming device/);
    expect(store.totalNwh(dev)).toBe(0n);
    expect(store.addEnergy(dev, { end_index: 2000n, energy: 5n + most, boot_id: 1 }, T0)?.raw).toBe(most);
    store.close();
  });

  it('refuses a booking that would take the counter past int64, never wraps it', () => {
    let store = Store.open(path);
    store.attachDevice(identity(1), T0);
    store.close();
    const raw = new Database(path);
    raw.prepare('UPDATE epochs SET total_nwh_at_start = 9223372036854775000').run();
    raw.close();
    store = Store.open(path);
    const dev = store.attachDevice(identity(1), T0);
    expect(() => feed(store, dev, 0n, 1)).toThrow(/total_nwh = .* does not fit in 64 bits/);
    expect(store.totalNwh(dev)).toBe(9223372036854775000n);
    store.close();
  });
});
