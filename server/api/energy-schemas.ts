// Schemas (TypeBox) of the energy-by-period and tariff routes (energy.ts): validated by fastify, published at
// /docs like the others (contract.ts adds energyRouteSchemas to the route table).

import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { DeviceParams } from './schemas.ts';

export const ENERGY_BUCKETS = ['hour', 'day', 'week', 'month', 'all'] as const;
export type EnergyBucket = (typeof ENERGY_BUCKETS)[number];

const HHMM = Type.String({ pattern: '^([01][0-9]|2[0-4]):[0-5][0-9]$', description: 'local wall-clock time, HH:MM (24:00 = midnight at the end)' });

export const TariffBandSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 40 }),
    price_per_kwh: Type.Number({ minimum: 0, maximum: 1000, description: 'currency per kWh (used to 10⁻⁶); net energy fed back is credited at it' }),
    from: HHMM,
    to: { ...HHMM, description: 'HH:MM; an end before the start wraps past midnight (23:00 → 07:00)' },
    days: Type.Optional(Type.Array(Type.Integer({ minimum: 1, maximum: 7 }), {
      minItems: 1, maxItems: 7, uniqueItems: true, description: 'ISO weekdays, 1 = Monday … 7 = Sunday; every day when absent',
    })),
  },
  { additionalProperties: false },
);

export const TariffSchema = Type.Object(
  {
    currency: Type.String({ minLength: 1, maxLength: 8, description: 'shown beside costs, e.g. EUR' }),
    standing_charge_per_day: Type.Number({ minimum: 0, maximum: 1000, description: 'charged per local calendar day, shared pro rata over the hours of a day' }),
    bands: Type.Array(TariffBandSchema, {
      minItems: 1, maxItems: 24,
      description: 'time-of-use bands; on every weekday each minute must be priced by exactly one band (a flat tariff: one band 00:00–24:00)',
    }),
  },
  { additionalProperties: false },
);
export type TariffT = Static<typeof TariffSchema>;

export const TariffReply = Type.Object({ tariff: Type.Union([TariffSchema, Type.Null()], { description: 'null until one is set' }) });

export const EnergyPeriodsQuery = Type.Object({
  from: Type.String({ minLength: 1, maxLength: 40, description: 'Unix ms, or ISO-8601 (without an offset: a wall-clock time in tz)' }),
  to: Type.String({ minLength: 1, maxLength: 40, description: 'Unix ms, or ISO-8601 (without an offset: a wall-clock time in tz)' }),
  bucket: Type.Optional(Type.Union(ENERGY_BUCKETS.map((b) => Type.Literal(b)), {
    default: 'all',
    description: "local calendar periods from the one holding 'from' up to 'to' (weeks start on Monday); 'all': [from, to) as one period",
  })),
  tz: Type.Optional(Type.String({ minLength: 1, maxLength: 64, default: 'UTC', description: 'IANA zone of the calendar' })),
});
export type EnergyPeriodsQueryT = Static<typeof EnergyPeriodsQuery> & { bucket: EnergyBucket; tz: string };

const Money = Type.Union([Type.Number(), Type.Null()], { description: 'in the tariff\'s currency, rounded to 10⁻⁶; null without a tariff' });
const EnergyFields = {
  energy_nwh: Type.String({ description: 'exact integer nWh from the ledger' }),
  energy_wh: Type.Number(),
};

export const EnergyPeriod = Type.Object({
  start: Type.String({ description: 'ISO-8601 with the local offset' }),
  start_ms: Type.Integer(),
  end_ms: Type.Integer(),
  ...EnergyFields,
  cost: Money,
  standing_charge: Money,
  bands: Type.Array(Type.Object({ name: Type.String(), ...EnergyFields, cost: Type.Number() }), { description: 'energy and cost per tariff band (empty without a tariff)' }),
});

const PeriodSet = Type.Object({
  periods: Type.Array(EnergyPeriod),
  total: EnergyPeriod,
});

export const EnergyPeriodsReply = Type.Object({
  device: Type.String(),
  tz: Type.String(),
  bucket: Type.String(),
  currency: Type.Union([Type.String(), Type.Null()]),
  ...PeriodSet.properties,
  previous: { ...PeriodSet, description: "the same number of periods just before (for 'all', the span of the same length before 'from')" },
});

/** The routes' contract entries (contract.ts), given its shared error replies. */
export function energyRouteSchemas(e: { badRequest: TSchema; noDevice: TSchema; bodyErrors: Record<number, TSchema>; error: (d: string) => TSchema }) {
  return {
    energyPeriods: {
      tags: ['energy'],
      summary: 'Exact energy (and cost, with a tariff) per local calendar period, with the periods before for comparison',
      params: DeviceParams,
      querystring: EnergyPeriodsQuery,
      response: { 200: EnergyPeriodsReply, 400: e.badRequest, 404: e.noDevice },
    },
    getTariff: {
      tags: ['energy'],
      summary: 'The tariff energy is priced with',
      response: { 200: TariffReply },
    },
    putTariff: {
      tags: ['energy'],
      summary: 'Set the tariff (stored in the database)',
      body: TariffSchema,
      response: {
        200: TariffReply, 400: e.badRequest, ...e.bodyErrors,
        503: e.error('the database did not take it (disk full): the previous tariff stays'),
      },
    },
  };
}
