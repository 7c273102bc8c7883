// GET /api/events: the event log of a device (server/store/events.ts) over a range, newest first, each with the
// time to open the history at.

import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { MeasurementStore } from './deps.ts';
import { parseRange } from './params.ts';
import { DeviceId } from './schemas.ts';

export const EVENT_KINDS = [
  'serve_start', 'serve_stop', 'link_connected', 'link_disconnected', 'link_reconnecting', 'link_bootloader', 'link_absent', 'calibration', 'disk_full', 'write_failing', 'device_first_seen', 'device_reset', 'energy_gap', 'no_data',
] as const;

export const EventsQuery = Type.Object({
  device: DeviceId,
  from: Type.String({ minLength: 1, maxLength: 40, description: 'Unix ms or ISO-8601' }),
  to: Type.String({ minLength: 1, maxLength: 40, description: 'Unix ms or ISO-8601' }),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 200 })),
  kind: Type.Optional(Type.Union(EVENT_KINDS.map((k) => Type.Literal(k)), { description: 'only events of this kind (e.g. calibration: the history of calibration changes)' })),
});
export type EventsQueryT = Static<typeof EventsQuery> & { limit: number };

export const EventJson = Type.Object({
  t_ms: Type.Integer({ description: 'Unix ms' }),
  until_ms: Type.Union([Type.Integer(), Type.Null()], { description: 'end of a period (disk full, no data); null for an instant' }),
  kind: Type.String({ description: EVENT_KINDS.join(', ') }),
  detail: Type.String({ description: 'what happened, in words (calibration: JSON of the registers and scale before and after)' }),
});
export const EventsReply = Type.Object({ device: Type.String(), events: Type.Array(EventJson) });

export function eventRouteSchemas(e: { badRequest: TSchema; noDevice: TSchema }) {
  return {
    events: {
      tags: ['events'],
      summary: 'The event log: serve starts and stops, link changes, device resets, calibration changes, energy gaps, stretches without data, disk-full periods',
      querystring: EventsQuery,
      response: { 200: EventsReply, 400: e.badRequest, 404: e.noDevice },
    },
  };
}

export function registerEventRoutes(app: FastifyInstance, store: MeasurementStore, mustDevice: (id: string) => unknown, R: { events: object }): void {
  app.get<{ Querystring: EventsQueryT }>('/api/events', { schema: R.events }, async (req) => {
    const q = req.query;
    const { fromMs, toMs } = parseRange(q.from, q.to);
    mustDevice(q.device);
    const events = store.events(q.device, fromMs, toMs, q.limit, q.kind);
    return { device: q.device, events: events.map((e) => ({ t_ms: e.tMs, until_ms: e.untilMs, kind: e.kind, detail: e.detail })) };
  });
}
