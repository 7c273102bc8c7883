// Exact energy of arbitrary ranges and of local calendar periods (DST days included), priced with a
// time-of-use tariff, against the ledger's own rows: Σ windows + Σ gaps whose instant falls in the range.

import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { energyPeriods } from '../../server/api/energy.ts';
import { storeFromReader } from '../../server/api/wire.ts';
import { StoreReader } from '../../server/store/query.ts';
import { Store, type DeviceRef } from '../../server/store/store.ts';
import { checkTariff, loadTariff, saveTariff, TariffError, type Tariff } from '../../server/store/tariff.ts';
import { derivedFor, makeWindow, rng, tempDir } from './helpers.ts';

const FS = 1000;
// Saturday 2026-03-28 20:00 UTC: the run crosses Berlin's spring-forward night (2026-03-29 02:00 → 03:00).
const T0 = Date.UTC(2026, 2, 28, 20, 0, 0);
const HOURS = 40;
const TZ = 'Europe/Berlin';

let dir: ReturnType<typeof tempDir>;
let store: Store;
let dev: DeviceRef;
let reader: StoreReader;

/** nWh the ledger booked with its instant (the millisecond before a window's end, a gap's time) in [a, b). */
function ledger(a: number, b: number): bigint {
  const one = (sql: string) => BigInt((store.db.prepare(sql).pluck().safeIntegers(true).get(dev.hex, a, b) as bigint | null) ?? 0n);
  const did = 'SELECT id FROM devices WHERE device_id = ?';
  return (
    one(`SELECT sum(energy_nwh) FROM windows WHERE device = (${did}) AND t_end_ms - 1 >= ? AND t_end_ms - 1 < ?`) +
    one(`SELECT sum(energy_nwh) FROM energy_gaps WHERE device = (${did}) AND t_ms - 1 >= ? AND t_ms - 1 < ?`)
  );
}

beforeAll(() => {
  dir = tempDir();
  store = Store.open(join(dir.dir, 'r.sqlite'));
  dev = store.attachDevice({ deviceId: 0xc0ffee00_0000aaaan, bootId: 1, fsNum: FS, fsDen: 1, defaultKv: 0.05, defaultKi: 0.004 }, T0);
  const next = rng(42);
  let end = 0n;
  let acc = 0n;
  for (let k = 0; end < BigInt(HOURS * 3_600_000); k++) {
    const samples = 5000 + Math.floor(next() * 50_000);
    const sumVi = BigInt(Math.floor(next() * 6e10) - 1e10);
    end += BigInt(samples);
    acc += sumVi;
    const now = T0 + Number(end);
    // Every 97th window is lost: the next snapshot books its energy as a gap.
    if (k % 97 !== 13) store.addWindow(dev, makeWindow(end, samples, sumVi), derivedFor(Number(sumVi) / samples), now);
    if (k % 5 === 4) store.addEnergy(dev, { end_index: end, energy: acc, boot_id: 1 }, now);
  }
  store.flush();
  reader = new StoreReader(store.db);
});

afterAll(() => {
  store?.close();
  dir?.cleanup();
});

describe('energy of any range, exact from the ledger', () => {
  it('equals the windows and gaps of the range to the nWh, for ranges crossing every rollup level', () => {
    expect(store.db.prepare('SELECT count(*) FROM energy_gaps').pluck().get()).toBeGreaterThan(5);
    const next = rng(7);
    const ranges: [number, number][] = [[T0 - 3_600_000, T0 + (HOURS + 1) * 3_600_000]];
    for (let k = 0; k < 60; k++) {
      const a = T0 + Math.floor(next() * HOURS * 3600) * 1000;
      ranges.push([a, a + Math.floor(next() * 20 * 3600) * 1000 + 1000]);
    }
    const got = reader.energyInRanges(dev.hex, ranges);
    ranges.forEach(([a, b], k) => expect(got[k], `${a} … ${b}`).toBe(ledger(a, b)));
    expect(got[0]).toBe(store.totalNwh(dev));
  });
});

describe('energy by local calendar period with a tariff', () => {
  const tariff: Tariff = {
    currency: 'EUR',
    standing_charge_per_day: 0.48,
    bands: [
      { name: 'night', price_per_kwh: 0.21, from: '22:00', to: '06:00' },
      { name: 'day', price_per_kwh: 0.34, from: '06:00', to: '22:00', days: [1, 2, 3, 4, 5] },
      { name: 'weekend', price_per_kwh: 0.27, from: '06:00', to: '22:00', days: [6, 7] },
    ],
  };

  it('gives the DST day 23 hourly periods, each equal to the ledger, cut and priced by band', () => {
    const api = storeFromReader(reader);
    api.setTariff(tariff);
    const r = energyPeriods(api, dev.hex, { from: '2026-03-29T00:00', to: '2026-03-30T00:00', bucket: 'hour', tz: TZ });
    expect(r.periods.length).toBe(23);
    expect(r.periods[2]!.start).toBe('2026-03-29T03:00:00.000+02:00');
    let sum = 0n;
    for (const p of r.periods) {
      expect(BigInt(p.energy_nwh)).toBe(ledger(p.start_ms, p.end_ms));
      expect(p.bands.reduce((s, b) => s + BigInt(b.energy_nwh), 0n)).toBe(BigInt(p.energy_nwh));
      // Sunday: night before 06:00 and after 22:00, the weekend band between.
      const hour = Number(p.start.slice(11, 13));
      const band = hour < 6 || hour >= 22 ? 'night' : 'weekend';
      expect(p.bands.filter((b) => b.energy_nwh !== '0').map((b) => b.name)).toEqual(BigInt(p.energy_nwh) === 0n ? [] : [band]);
      const price = tariff.bands.find((b) => b.name === band)!.price_per_kwh;
      expect(p.cost).toBeCloseTo((Number(p.energy_nwh) / 1e12) * price + 0.48 / 23, 6);
      sum += BigInt(p.energy_nwh);
    }
    expect(BigInt(r.total.energy_nwh)).toBe(sum);
    expect(sum).toBe(ledger(Date.UTC(2026, 2, 28, 23), Date.UTC(2026, 2, 29, 22)));
    expect(r.total.standing_charge).toBeCloseTo(0.48, 9);
    // The previous 23 hours: Saturday evening back to 00:00 local of Saturday + 1 h (hours are absolute time).
    expect(r.previous.periods.length).toBe(23);
    expect(r.previous.periods.at(-1)!.end_ms).toBe(r.periods[0]!.start_ms);
    expect(BigInt(r.previous.total.energy_nwh)).toBe(ledger(r.previous.periods[0]!.start_ms, r.periods[0]!.start_ms));
  });

  it('gives days of the week in local midnights, the short day 23 h long', () => {
    const api = storeFromReader(reader);
    const r = energyPeriods(api, dev.hex, { from: '2026-03-28T12:00', to: '2026-03-30T12:00', bucket: 'day', tz: TZ });
    expect(r.periods.map((p) => (p.end_ms - p.start_ms) / 3_600_000)).toEqual([24, 23, 24]);
    for (const p of r.periods) expect(BigInt(p.energy_nwh)).toBe(ledger(p.start_ms, p.end_ms));
    expect(r.periods[1]!.standing_charge).toBeCloseTo(0.48, 9);
    const week = energyPeriods(api, dev.hex, { from: '2026-03-28T12:00', to: '2026-03-28T13:00', bucket: 'week', tz: TZ });
    expect(week.periods[0]!.start).toBe('2026-03-23T00:00:00.000+01:00');
    expect(week.periods[0]!.end_ms).toBe(Date.UTC(2026, 2, 29, 22));
    expect(BigInt(week.total.energy_nwh)).toBe(ledger(T0 - 86_400_000, Date.UTC(2026, 2, 29, 22)));
    expect(week.total.standing_charge).toBeCloseTo(7 * 0.48, 9);
  });

  it('prices nothing without a tariff, and keeps the stored tariff across a reopen', () => {
    expect(loadTariff(reader.db)).toEqual(tariff);
    store.db.prepare("DELETE FROM settings WHERE key = 'tariff'").run();
    const r = energyPeriods(storeFromReader(reader), dev.hex, { from: String(T0), to: String(T0 + 3_600_000), bucket: 'all', tz: 'UTC' });
    expect(r.currency).toBeNull();
    expect(r.total.cost).toBeNull();
    expect(BigInt(r.total.energy_nwh)).toBe(ledger(T0, T0 + 3_600_000));
    saveTariff(store.db, tariff);
  });
});

describe('tariff checks', () => {
  const flat = (bands: Tariff['bands']): Tariff => ({ currency: 'EUR', standing_charge_per_day: 0, bands });
  it('accepts a flat tariff and refuses holes and overlaps with the hour that is wrong', () => {
    expect(() => checkTariff(flat([{ name: 'flat', price_per_kwh: 0.3, from: '00:00', to: '24:00' }]))).not.toThrow();
    expect(() => checkTariff(flat([{ name: 'a', price_per_kwh: 0.3, from: '00:00', to: '12:00' }]))).toThrow(/on Monday no band applies at 12:00/);
    expect(() =>
      checkTariff(flat([
        { name: 'a', price_per_kwh: 0.3, from: '00:00', to: '13:00' },
        { name: 'b', price_per_kwh: 0.2, from: '12:30', to: '24:00' },
      ])),
    ).toThrow(TariffError);
    expect(() => checkTariff(flat([{ name: 'a', price_per_kwh: 0.3, from: '00:00', to: '24:00', days: [1, 2, 3, 4, 5] }]))).toThrow(/Saturday no band applies at 00:00/);
  });
});
