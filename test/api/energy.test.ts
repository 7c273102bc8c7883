// The energy-by-period and tariff routes over the fake store (1 Wh per hour of any range): calendar periods in
// the asked zone, validation, the tariff's round trip and a write the database refuses.

import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../server/api/app.ts';
import { TariffWriteError, type Tariff } from '../../server/store/tariff.ts';
import { DEVICE, fakes } from './fakes.ts';

let f: ReturnType<typeof fakes>;
let app: FastifyInstance;

beforeEach(async () => {
  f = fakes();
  app = await buildApp({ ...f });
});
afterEach(async () => {
  await app.close();
});

const periods = (q: string) => app.inject({ method: 'GET', url: `/api/devices/${DEVICE}/energy/periods?${q}` });
const flat: Tariff = { currency: 'EUR', standing_charge_per_day: 0.5, bands: [{ name: 'flat', price_per_kwh: 0.3, from: '00:00', to: '24:00' }] };

describe('GET /api/devices/:id/energy/periods', () => {
  it('gives the local days of a month, with the month before for comparison', async () => {
    const r = await periods('from=2026-10-01T00:00&to=2026-11-01T00:00&bucket=day&tz=Europe/Berlin');
    expect(r.statusCode).toBe(200);
    const b = r.json();
    expect(b.periods.length).toBe(31);
    // 2026-10-25 is 25 h long in Berlin: the fake books 1 Wh per hour.
    expect(b.periods[24].start).toBe('2026-10-25T00:00:00.000+02:00');
    expect(b.periods[24].energy_nwh).toBe('25000000000');
    expect(b.total.energy_wh).toBe(745);
    expect(b.previous.periods.length).toBe(31);
    expect(b.previous.periods[0].start).toBe('2026-08-31T00:00:00.000+02:00');
    expect(b.currency).toBeNull();
    expect(b.total.cost).toBeNull();
  });

  it('prices with the stored tariff: energy × price + the standing charge per day', async () => {
    expect((await app.inject({ method: 'PUT', url: '/api/tariff', payload: flat })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/api/tariff' })).json()).toEqual({ tariff: flat });
    const b = (await periods('from=2026-11-02T00:00:00Z&to=2026-11-03T00:00:00Z&bucket=all')).json();
    expect(b.currency).toBe('EUR');
    expect(b.total.energy_wh).toBe(24);
    expect(b.total.cost).toBeCloseTo(0.024 * 0.3 + 0.5, 9);
    expect(b.total.bands).toEqual([{ name: 'flat', energy_nwh: '24000000000', energy_wh: 24, cost: 0.0072 }]);
  });

  it('refuses a bucket it does not know, an inverted range and too many periods, saying what to do', async () => {
    expect((await periods('from=2026-11-02&to=2026-11-01&bucket=day')).json().message).toMatch(/'from' must be before 'to'/);
    const many = await periods('from=2020-01-01&to=2026-01-01&bucket=hour');
    expect(many.statusCode).toBe(400);
    expect(many.json().message).toMatch(/more than 1008 hours: choose a coarser 'bucket'/);
    expect((await periods('from=2026-11-01&to=2026-11-02&tz=Mars/Olympus')).json().message).toMatch(/unknown time zone/);
    // A century in one period, cut at every band boundary: refused rather than summed piece by piece.
    await app.inject({ method: 'PUT', url: '/api/tariff', payload: { ...flat, bands: [{ ...flat.bands[0], to: '12:00' }, { name: 'pm', price_per_kwh: 0.2, from: '12:00', to: '24:00' }] } });
    const century = await periods('from=2000-01-01&to=2100-01-01&bucket=all');
    expect(century.statusCode).toBe(400);
    expect(century.json().message).toMatch(/pieces, more than 4392: ask for a shorter range/);
  });
});

describe('PUT /api/tariff', () => {
  it('refuses overlapping bands with the weekday and time, and keeps the tariff it had', async () => {
    await app.inject({ method: 'PUT', url: '/api/tariff', payload: flat });
    const r = await app.inject({
      method: 'PUT',
      url: '/api/tariff',
      payload: { ...flat, bands: [flat.bands[0], { name: 'peak', price_per_kwh: 0.5, from: '17:00', to: '20:00', days: [3] }] },
    });
    expect(r.statusCode).toBe(400);
    expect(r.json().message).toBe("on Wednesday at 17:00 both 'flat' and 'peak' apply: bands must not overlap");
    expect(f.store.tariff()).toEqual(flat);
  });

  it('answers 503 with the reason when the database does not take it', async () => {
    f.store.setTariff = () => {
      throw new TariffWriteError('the tariff could not be stored (database or disk is full); the previous one stays in force');
    };
    const r = await app.inject({ method: 'PUT', url: '/api/tariff', payload: flat });
    expect(r.statusCode).toBe(503);
    expect(r.json().message).toMatch(/disk is full/);
  });
});
