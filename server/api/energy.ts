// Energy by local calendar period, priced with the stored tariff: the periods (hours, days, weeks, months in
// the user's zone, so a DST day has 23 or 25 hours) are cut at the tariff's band boundaries, the exact nWh of
// every piece comes from the ledger's rollups in one read (StoreReader.energyInRanges), and a period's energy
// is the sum of its pieces, so it equals the ledger to the nWh however the bands fall.

import type { FastifyInstance } from 'fastify';
import { DateTime, type DurationLikeObject } from 'luxon';
import { bandDays, bandSpans, TariffWriteError, type Tariff } from '../store/tariff.ts';
import { toWholeSeconds } from '../store/range-energy.ts';
import type { MeasurementStore } from './deps.ts';
import type { EnergyBucket, EnergyPeriodsQueryT, TariffT } from './energy-schemas.ts';
import { BadRequestError, checkZone, nwhToWh, parseRange } from './params.ts';

/** Most periods one request may ask for (hours of six weeks). */
export const MAX_PERIODS = 1008;
/** Most pieces (periods cut at band boundaries) one request may sum: two years of a tariff with 3 bands a day. */
export const MAX_PIECES = 3 * 2 * 732;
const MINUTES_PER_DAY = 1440;
/** nWh × (10⁻⁶ currency per kWh) = 10⁻¹⁸ currency. */
const ATTO_PER_UNIT = 10n ** 18n;

type Span = [number, number];

/** Local calendar periods from the one holding fromMs until one reaches toMs; 'all': [from, to) itself. */
export function calendarPeriods(fromMs: number, toMs: number, bucket: EnergyBucket, tz: string): Span[] {
  if (bucket === 'all') return [[toWholeSeconds(fromMs), toWholeSeconds(toMs)]];
  const step: DurationLikeObject = { [`${bucket}s`]: 1 };
  const out: Span[] = [];
  let start = DateTime.fromMillis(fromMs, { zone: tz }).startOf(bucket);
  while (start.toMillis() < toMs) {
    if (out.length === MAX_PERIODS) {
      throw new BadRequestError(`that is more than ${MAX_PERIODS} ${bucket}s: choose a coarser 'bucket' or a shorter range`);
    }
    const end = start.plus(step);
    out.push([start.toMillis(), end.toMillis()]);
    start = end;
  }
  return out;
}

/** The same number of periods just before the first one. */
export function previousPeriods(periods: Span[], bucket: EnergyBucket, tz: string): Span[] {
  const first = periods[0]![0];
  if (bucket === 'all') return [[2 * first - periods[0]![1], first]];
  const from = DateTime.fromMillis(first, { zone: tz }).minus({ [`${bucket}s`]: periods.length }).toMillis();
  return calendarPeriods(from, first, bucket, tz);
}

interface Piece { band: number; span: Span }

/** The period cut where the tariff's bands begin and end (local wall-clock times of each day it touches). */
export function tariffPieces(period: Span, tariff: Tariff | null, tz: string): Piece[] {
  if (!tariff) return [{ band: -1, span: period }];
  const [a, b] = period;
  const out: Piece[] = [];
  for (let day = DateTime.fromMillis(a, { zone: tz }).startOf('day'); day.toMillis() < b; day = day.plus({ days: 1 })) {
    const next = day.plus({ days: 1 });
    const at = (m: number) => (m === MINUTES_PER_DAY ? next : day.set({ hour: Math.floor(m / 60), minute: m % 60 })).toMillis();
    tariff.bands.forEach((band, k) => {
      if (!bandDays(band).includes(day.weekday)) return;
      for (const [m0, m1] of bandSpans(band)) {
        const s = Math.max(a, m0 === 0 ? day.toMillis() : at(m0));
        const e = Math.min(b, at(m1));
        if (e > s) out.push({ band: k, span: [s, e] });
      }
    });
  }
  return out;
}

/** Standing charge of a period: the tariff's charge per local day, times the share of each day it covers. */
function standingCharge(period: Span, tariff: Tariff, tz: string): number {
  const [a, b] = period;
  let days = 0;
  for (let day = DateTime.fromMillis(a, { zone: tz }).startOf('day'); day.toMillis() < b; day = day.plus({ days: 1 })) {
    const d0 = day.toMillis();
    const d1 = day.plus({ days: 1 }).toMillis();
    days += (Math.min(b, d1) - Math.max(a, d0)) / (d1 - d0);
  }
  return tariff.standing_charge_per_day * days;
}

const micro = (price: number): bigint => BigInt(Math.round(price * 1e6));
const money = (atto: bigint, extra = 0): number => Math.round((Number(atto) / 1e18 + extra) * 1e6) / 1e6;

interface Priced { span: Span; nwh: bigint; atto: bigint; standing: number; bands: { nwh: bigint; atto: bigint }[] }

function priceAll(store: MeasurementStore, device: string, periods: Span[], tariff: Tariff | null, tz: string): Priced[] {
  const pieces = periods.map((p) => tariffPieces(p, tariff, tz));
  const count = pieces.reduce((n, p) => n + p.length, 0);
  if (count > MAX_PIECES) {
    throw new BadRequestError(`the tariff's bands cut this range into ${count} pieces, more than ${MAX_PIECES}: ask for a shorter range`);
  }
  const energies = store.energyInRanges(device, pieces.flat().map((x) => x.span));
  let k = 0;
  return periods.map((span, j) => {
    const bands = (tariff?.bands ?? []).map(() => ({ nwh: 0n, atto: 0n }));
    let nwh = 0n;
    for (const piece of pieces[j]!) {
      const e = energies[k++]!;
      nwh += e;
      if (piece.band >= 0) {
        const bnd = bands[piece.band]!;
        bnd.nwh += e;
        bnd.atto += e * micro(tariff!.bands[piece.band]!.price_per_kwh);
      }
    }
    const atto = bands.reduce((s, x) => s + x.atto, 0n);
    return { span, nwh, atto, standing: tariff ? standingCharge(span, tariff, tz) : 0, bands };
  });
}

function periodJson(p: Priced, tariff: Tariff | null, tz: string) {
  return {
    start: DateTime.fromMillis(p.span[0], { zone: tz }).toISO() ?? '',
    start_ms: p.span[0],
    end_ms: p.span[1],
    energy_nwh: p.nwh.toString(),
    energy_wh: nwhToWh(p.nwh),
    cost: tariff ? money(p.atto, p.standing) : null,
    standing_charge: tariff ? money(0n, p.standing) : null,
    bands: (tariff?.bands ?? []).map((b, k) => ({
      name: b.name, energy_nwh: p.bands[k]!.nwh.toString(), energy_wh: nwhToWh(p.bands[k]!.nwh), cost: money(p.bands[k]!.atto),
    })),
  };
}

function setJson(priced: Priced[], tariff: Tariff | null, tz: string) {
  const total: Priced = {
    span: [priced[0]!.span[0], priced.at(-1)!.span[1]],
    nwh: priced.reduce((s, p) => s + p.nwh, 0n),
    atto: priced.reduce((s, p) => s + p.atto, 0n),
    standing: priced.reduce((s, p) => s + p.standing, 0),
    bands: (tariff?.bands ?? []).map((_, k) => ({
      nwh: priced.reduce((s, p) => s + p.bands[k]!.nwh, 0n),
      atto: priced.reduce((s, p) => s + p.bands[k]!.atto, 0n),
    })),
  };
  return { periods: priced.map((p) => periodJson(p, tariff, tz)), total: periodJson(total, tariff, tz) };
}

/** The answer of GET /api/devices/:id/energy/periods. */
export function energyPeriods(store: MeasurementStore, device: string, q: EnergyPeriodsQueryT) {
  const tz = checkZone(q.tz);
  const { fromMs, toMs } = parseRange(q.from, q.to, tz);
  const periods = calendarPeriods(fromMs, toMs, q.bucket, tz);
  if (periods[0]![1] <= periods[0]![0]) throw new BadRequestError(`the range ${q.from} … ${q.to} is shorter than a second`);
  const tariff = store.tariff();
  return {
    device,
    tz,
    bucket: q.bucket,
    currency: tariff?.currency ?? null,
    ...setJson(priceAll(store, device, periods, tariff, tz), tariff, tz),
    previous: setJson(priceAll(store, device, previousPeriods(periods, q.bucket, tz), tariff, tz), tariff, tz),
  };
}

export function registerEnergyRoutes(
  app: FastifyInstance,
  store: MeasurementStore,
  mustDevice: (id: string) => unknown,
  R: { energyPeriods: object; getTariff: object; putTariff: object },
): void {
  app.get<{ Params: { id: string }; Querystring: EnergyPeriodsQueryT }>(
    '/api/devices/:id/energy/periods',
    { schema: R.energyPeriods },
    async (req) => {
      mustDevice(req.params.id);
      return energyPeriods(store, req.params.id, req.query);
    },
  );
  app.get('/api/tariff', { schema: R.getTariff }, async () => ({ tariff: store.tariff() }));
  app.put<{ Body: TariffT }>('/api/tariff', { schema: R.putTariff }, async (req, reply) => {
    try {
      return { tariff: store.setTariff(req.body) };
    } catch (err) {
      // The error handler hides 5xx messages; this one is the user's to act on (free disk space), not a bug.
      if (!(err instanceof TariffWriteError)) throw err;
      return reply.code(503).send({ statusCode: 503, error: 'Service Unavailable', message: err.message });
    }
  });
}
