// Power quality (docs/power-quality.md): the stored 10-minute harmonic aggregates and the voltage events of a
// device, as JSON and as CSV (server/export/pq-csv.ts).
//   GET /api/devices/:id/pq/harmonics?from&to&limit        10-minute aggregates, oldest first
//   GET /api/devices/:id/pq/events?from&to&limit           dips, swells and interruptions, oldest first
//   GET /api/devices/:id/pq/events/:eventId                one event with its Urms(1/2) trace
//   GET /api/devices/:id/pq/harmonics.csv?from&to&tz, …/pq/events.csv?from&to&tz

import { Readable } from 'node:stream';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { MAX_ORDER } from '../pq/iec61000-4-7.ts';
import { PQ_CSV_HEADERS, type PqExport } from '../export/pq-csv.ts';
import type { PqEventRow } from '../store/pq-query.ts';
import type { MeasurementStore } from './deps.ts';
import { checkZone, parseRange } from './params.ts';
import { DeviceParams } from './schemas.ts';

const Time = (what: string) => Type.String({ minLength: 1, maxLength: 40, description: `${what}: Unix ms or ISO-8601` });

export const PqRangeQuery = Type.Object({
  from: Time('start of the range'),
  to: Time('end of the range (exclusive)'),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 5000, default: 1008, description: 'most rows (1008: a week of 10-minute values)' })),
});
export type PqRangeQueryT = Static<typeof PqRangeQuery> & { limit: number };

export const PqCsvQuery = Type.Object({
  from: Time('start of the range'),
  to: Time('end of the range (exclusive)'),
  tz: Type.Optional(Type.String({ minLength: 1, maxLength: 64, default: 'UTC', description: 'IANA zone of the timestamps' })),
});
export type PqCsvQueryT = Static<typeof PqCsvQuery> & { tz: string };

const Orders = (unit: string) => Type.Array(Type.Number(), { minItems: MAX_ORDER, maxItems: MAX_ORDER, description: `orders 1 … ${MAX_ORDER} (index 0 = order 1), ${unit}` });
const Ratio = Type.Union([Type.Number(), Type.Null()], { description: 'THDS over orders 2 … 40 as a ratio (0.05 = 5 %); null without a fundamental' });

export const PqAggregateJson = Type.Object({
  t_start_ms: Type.Integer({ description: 'start of its first 10/12-cycle window, Unix ms' }),
  t_end_ms: Type.Integer({ description: 'end of its last window, Unix ms' }),
  windows: Type.Integer({ description: '10/12-cycle windows aggregated' }),
  flagged: Type.Boolean({ description: 'a dip, swell or interruption touched the interval (IEC 61000-4-30 flag)' }),
  vrms: Type.Number({ description: 'V' }),
  irms: Type.Number({ description: 'A' }),
  thd_v: Ratio,
  thd_i: Ratio,
  h_v: Orders('harmonic subgroup RMS, V'),
  h_i: Orders('harmonic subgroup RMS, A'),
  p_h: Orders('harmonic active power, W'),
});
export const PqHarmonicsReply = Type.Object({ device: Type.String(), aggregates: Type.Array(PqAggregateJson) });

const EventFields = {
  id: Type.Integer({ description: 'for GET …/pq/events/:eventId' }),
  kind: Type.Union([Type.Literal('dip'), Type.Literal('swell'), Type.Literal('interruption')]),
  t_start_ms: Type.Integer({ description: 'Unix ms' }),
  duration_s: Type.Number(),
  extreme_v: Type.Number({ description: 'residual (dip, interruption) or maximum (swell) Urms(1/2), V' }),
  cut: Type.Boolean({ description: 'the waveform stream ended (a loss, a reset) before the event did' }),
};
export const PqEventJson = Type.Object(EventFields);
export const PqEventsReply = Type.Object({ device: Type.String(), events: Type.Array(PqEventJson) });
export const PqEventReply = Type.Object({
  device: Type.String(),
  ...EventFields,
  trace: Type.Object({
    t_s: Type.Array(Type.Number(), { description: 'seconds from the start, from 0.5 s before to 0.5 s after the event' }),
    urms_v: Type.Array(Type.Number(), { description: 'Urms(1/2) at t_s (the end of its cycle), V' }),
  }),
});
export const PqEventParams = Type.Object({ ...DeviceParams.properties, eventId: Type.Integer({ minimum: 1 }) });

export function pqRouteSchemas(e: { badRequest: TSchema; noDevice: TSchema; error: (d: string) => TSchema }) {
  const tags = ['power quality'];
  const csv = (what: PqExport) => ({
    tags,
    summary: `CSV of the ${what === 'harmonics' ? '10-minute harmonic aggregates' : 'voltage events'} (columns: docs/power-quality.md)`,
    params: DeviceParams,
    querystring: PqCsvQuery,
    response: {
      200: { description: `CSV; header: ${PQ_CSV_HEADERS[what].slice(0, 120)}…`, content: { 'text/csv': { schema: Type.String() } } },
      400: e.badRequest,
      404: e.noDevice,
    },
  });
  return {
    pqHarmonics: {
      tags, summary: 'The 10-minute harmonic aggregates (IEC 61000-4-7/-4-30) starting in [from, to)',
      params: DeviceParams, querystring: PqRangeQuery,
      response: { 200: PqHarmonicsReply, 400: e.badRequest, 404: e.noDevice },
    },
    pqEvents: {
      tags, summary: 'The dips, swells and interruptions (IEC 61000-4-30) starting in [from, to)',
      params: DeviceParams, querystring: PqRangeQuery,
      response: { 200: PqEventsReply, 400: e.badRequest, 404: e.noDevice },
    },
    pqEvent: {
      tags, summary: 'One voltage event with its Urms(1/2) trace',
      params: PqEventParams,
      response: { 200: PqEventReply, 400: e.badRequest, 404: e.error('no device with this id, or no event with this id on it') },
    },
    pqHarmonicsCsv: csv('harmonics'),
    pqEventsCsv: csv('events'),
  };
}

function eventJson(e: PqEventRow) {
  return { id: e.id, kind: e.kind as 'dip', t_start_ms: e.tStartMs, duration_s: e.durationMs / 1000, extreme_v: e.extremeV, cut: e.cut };
}

type Schemas = ReturnType<typeof pqRouteSchemas>;

export function registerPqRoutes(app: FastifyInstance, store: MeasurementStore, mustDevice: (id: string) => unknown, R: Schemas): void {
  type Range = { Params: Static<typeof DeviceParams>; Querystring: PqRangeQueryT };
  app.get<Range>('/api/devices/:id/pq/harmonics', { schema: R.pqHarmonics }, async (req) => {
    const { fromMs, toMs } = parseRange(req.query.from, req.query.to);
    mustDevice(req.params.id);
    const aggregates = store.pqAggregates(req.params.id, fromMs, toMs, req.query.limit).map((a) => ({
      t_start_ms: a.tStartMs, t_end_ms: a.tEndMs, windows: a.windows, flagged: a.flagged, vrms: a.vrms, irms: a.irms,
      thd_v: a.thdV, thd_i: a.thdI, h_v: a.hV, h_i: a.hI, p_h: a.pH,
    }));
    return { device: req.params.id, aggregates };
  });
  app.get<Range>('/api/devices/:id/pq/events', { schema: R.pqEvents }, async (req) => {
    const { fromMs, toMs } = parseRange(req.query.from, req.query.to);
    mustDevice(req.params.id);
    return { device: req.params.id, events: store.pqEvents(req.params.id, fromMs, toMs, req.query.limit).map(eventJson) };
  });
  app.get<{ Params: Static<typeof PqEventParams> }>('/api/devices/:id/pq/events/:eventId', { schema: R.pqEvent }, async (req, reply) => {
    mustDevice(req.params.id);
    const e = store.pqEvent(req.params.id, req.params.eventId);
    if (!e) {
      return reply.code(404).send({ statusCode: 404, error: 'Not Found', message: `device ${req.params.id} has no power-quality event ${req.params.eventId}` });
    }
    return { device: req.params.id, ...eventJson(e), trace: { t_s: e.trace.tS, urms_v: e.trace.urmsV } };
  });
  for (const what of ['harmonics', 'events'] as const) {
    app.get<{ Params: Static<typeof DeviceParams>; Querystring: PqCsvQueryT }>(
      `/api/devices/:id/pq/${what}.csv`,
      { schema: what === 'harmonics' ? R.pqHarmonicsCsv : R.pqEventsCsv },
      async (req, reply) => {
        const tz = checkZone(req.query.tz);
        const { fromMs, toMs } = parseRange(req.query.from, req.query.to, tz);
        mustDevice(req.params.id);
        const name = `crabwatt-${req.params.id}-pq-${what}.csv`;
        return reply
          .type('text/csv; charset=utf-8')
          .header('content-disposition', `attachment; filename="${name}"`)
          .send(Readable.from(store.pqCsv(req.params.id, what, fromMs, toMs, tz)));
      },
    );
  }
}
