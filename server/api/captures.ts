// Kept captures: a complete capture copied from the device's few in memory (GET /api/devices/:id/captures/:n)
// into the database with a name (server/store/captures.ts), listed, renamed, deleted, exported as CSV
// (server/export/capture-csv.ts) and read back whole for the waveform view.
//
//   GET    /api/captures?device&limit      the kept ones, newest first
//   POST   /api/captures                   keep one: { device, capture_id, name? } (409 while it is still pending)
//   GET    /api/captures/:keptId           one, with its samples
//   PATCH  /api/captures/:keptId           rename: { name }
//   DELETE /api/captures/:keptId
//   GET    /api/captures/:keptId/csv       its samples as CSV, units in the header

import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { captureCsv, captureFileStem } from '../export/capture-csv.ts';
import { CAPTURE_NAME_MAX, CaptureWriteError, type KeptCapture, type KeptCaptureInfo } from '../store/captures.ts';
import type { DeviceDirectory, MeasurementStore } from './deps.ts';
import { BadRequestError } from './params.ts';
import { DeviceId } from './schemas.ts';

const Name = Type.String({
  minLength: 1, maxLength: CAPTURE_NAME_MAX, pattern: '^[^\\u0000-\\u001f\\u007f]*$',
  description: `1 to ${CAPTURE_NAME_MAX} characters, no control characters, not only spaces`,
});
const KeptId = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER });

export const KeptCapturesQuery = Type.Object({
  device: Type.Optional(DeviceId),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 200 })),
});
export type KeptCapturesQueryT = Static<typeof KeptCapturesQuery> & { limit: number };
export const KeepCaptureBody = Type.Object(
  {
    device: DeviceId,
    capture_id: Type.Integer({ minimum: 0, maximum: 65535, description: 'the number POST /api/devices/{id}/captures answered with' }),
    name: Type.Optional(Name),
  },
  { additionalProperties: false },
);
export const RenameCaptureBody = Type.Object({ name: Name }, { additionalProperties: false });
export const KeptCaptureParams = Type.Object({ keptId: KeptId });

const infoFields = {
  id: Type.Integer({ description: 'the kept capture\'s own number (not the device\'s capture_id)' }),
  device: Type.String(),
  name: Type.String(),
  captured_at: Type.Integer({ description: 'Unix ms when it was armed' }),
  kept_at: Type.Integer({ description: 'Unix ms' }),
  pairs: Type.Integer(),
  sample_rate_hz: Type.Number({ description: "the device's sample rate" }),
  decimation: Type.Integer({ description: 'samples between two pairs' }),
  rate_hz: Type.Number({ description: 'pairs per second: sample_rate_hz / decimation' }),
  span_ms: Type.Number({ description: 'time the pairs cover' }),
  file_stem: Type.String({ description: 'file name for its exports, without the extension' }),
  href: Type.String(),
};
export const KeptCaptureInfoJson = Type.Object(infoFields);
export const KeptCapturesReply = Type.Object({ captures: Type.Array(KeptCaptureInfoJson) });
export const KeptCaptureReply = Type.Object({
  ...infoFields,
  kv: Type.Number({ description: 'volts per LSB when it was taken' }),
  ki: Type.Number({ description: 'amperes per LSB when it was taken' }),
  first_index: Type.Integer({ description: 'sample index of v[0] / i[0]' }),
  trigger_index: Type.Integer({ description: 'sample index of the trigger pair' }),
  trigger_offset: Type.Integer({ description: 'position of the trigger pair in v / i' }),
  v: Type.Array(Type.Integer(), { description: 'calibrated voltage, ADC LSB' }),
  i: Type.Array(Type.Integer(), { description: 'calibrated current, ADC LSB' }),
});

export function captureRouteSchemas(e: { badRequest: TSchema; bodyErrors: Record<number, TSchema>; error: (d: string) => TSchema }) {
  const noKept = e.error('no kept capture with this number');
  const unwritable = e.error('the database did not take the change (a full disk): nothing changed, retry after freeing space');
  const tags = ['captures'];
  return {
    listKept: {
      tags, summary: 'Kept captures, newest first (of one device with ?device=)',
      querystring: KeptCapturesQuery,
      response: { 200: KeptCapturesReply, 400: e.badRequest },
    },
    keepCapture: {
      tags, summary: 'Keep a complete capture in the database, with a name',
      body: KeepCaptureBody,
      response: {
        201: KeptCaptureInfoJson, 400: e.badRequest, ...e.bodyErrors,
        404: e.error('no device with this id, or no capture with this number on it (the device keeps its last 16)'),
        409: e.error('the capture is still pending: keep it once its state is complete'),
        422: e.error('the capture failed: there are no samples to keep'),
        503: unwritable,
      },
    },
    getKept: {
      tags, summary: 'A kept capture with its samples',
      params: KeptCaptureParams,
      response: { 200: KeptCaptureReply, 400: e.badRequest, 404: noKept },
    },
    renameKept: {
      tags, summary: 'Rename a kept capture',
      params: KeptCaptureParams, body: RenameCaptureBody,
      response: { 200: KeptCaptureInfoJson, 400: e.badRequest, 404: noKept, ...e.bodyErrors, 503: unwritable },
    },
    deleteKept: {
      tags, summary: 'Delete a kept capture',
      params: KeptCaptureParams,
      response: { 204: Type.Null({ description: 'deleted' }), 400: e.badRequest, 404: noKept, 503: unwritable },
    },
    keptCsv: {
      tags, summary: 'A kept capture as CSV: sample_index, t_s (from the trigger), v_v, i_a, p_w',
      params: KeptCaptureParams,
      response: {
        200: { description: 'CSV, header line first', content: { 'text/csv': { schema: Type.String() } } },
        400: e.badRequest, 404: noKept,
      },
    },
  };
}

type R = ReturnType<typeof captureRouteSchemas>;

export function keptInfoJson(c: KeptCaptureInfo) {
  return {
    id: c.id,
    device: c.device,
    name: c.name,
    captured_at: c.capturedAtMs,
    kept_at: c.keptAtMs,
    pairs: c.pairs,
    sample_rate_hz: c.sampleRateHz,
    decimation: c.decimation,
    rate_hz: c.sampleRateHz / c.decimation,
    span_ms: ((c.pairs * c.decimation) / c.sampleRateHz) * 1000,
    file_stem: captureFileStem(c),
    href: `/api/captures/${c.id}`,
  };
}

function keptJson(c: KeptCapture) {
  return {
    ...keptInfoJson(c),
    kv: c.kv, ki: c.ki, first_index: c.firstIndex, trigger_index: c.triggerIndex, trigger_offset: c.triggerOffset, v: c.v, i: c.i,
  };
}

/** A name as given, refused when it is only spaces (the schema has bounded its length and characters). */
function checkedName(name: string): string {
  const trimmed = name.trim();
  if (!trimmed) throw new BadRequestError("'name' is only spaces: give the capture a name with some text in it");
  return trimmed;
}

function send(reply: FastifyReply, status: number, error: string, message: string) {
  return reply.code(status).send({ statusCode: status, error, message });
}

/** The error handler hides 5xx messages; a full disk is the user's to act on, not a bug. */
async function writing<T>(reply: FastifyReply, f: () => T): Promise<T | FastifyReply> {
  try {
    return f();
  } catch (err) {
    if (!(err instanceof CaptureWriteError)) throw err;
    return send(reply, 503, 'Service Unavailable', err.message);
  }
}

export function registerCaptureRoutes(
  app: FastifyInstance,
  store: MeasurementStore,
  devices: DeviceDirectory,
  mustDevice: (id: string) => unknown,
  R: R,
): void {
  const kept = store.captures;
  const notKept = (reply: FastifyReply, id: number) => send(reply, 404, 'Not Found', `no kept capture ${id}: GET /api/captures lists them`);

  app.get<{ Querystring: KeptCapturesQueryT }>('/api/captures', { schema: R.listKept }, async (req) => ({
    captures: kept.list(req.query.device, req.query.limit).map(keptInfoJson),
  }));

  app.post<{ Body: Static<typeof KeepCaptureBody> }>('/api/captures', { schema: R.keepCapture }, async (req, reply) => {
    const { device, capture_id: captureId } = req.body;
    mustDevice(device);
    const name = req.body.name === undefined ? undefined : checkedName(req.body.name);
    const c = devices.capture(device, captureId);
    if (!c) {
      return send(reply, 404, 'Not Found', `no capture ${captureId} on '${device}' (the device keeps its last 16 in memory): POST /api/devices/${device}/captures first`);
    }
    if (c.state === 'pending') return send(reply, 409, 'Conflict', `capture ${captureId} is still pending: keep it once GET ${`/api/devices/${device}/captures/${captureId}`} says complete`);
    if (c.state === 'failed') return send(reply, 422, 'Unprocessable Entity', `capture ${captureId} failed (${c.detail}): there are no samples to keep; capture again`);
    return writing(reply, () => {
      const info = kept.keep(
        {
          device: c.device, name: name ?? `capture ${new Date(c.requestedAtMs).toISOString()}`, capturedAtMs: c.requestedAtMs,
          sampleRateHz: c.sampleRateHz, decimation: c.decimation, kv: c.kv, ki: c.ki, firstIndex: c.firstIndex,
          triggerIndex: c.triggerIndex, triggerOffset: c.triggerOffset, v: c.v, i: c.i,
        },
        Date.now(),
      );
      return reply.code(201).send(keptInfoJson(info));
    });
  });

  app.get<{ Params: Static<typeof KeptCaptureParams> }>('/api/captures/:keptId', { schema: R.getKept }, async (req, reply) => {
    const c = kept.get(req.params.keptId);
    return c ? keptJson(c) : notKept(reply, req.params.keptId);
  });

  app.patch<{ Params: Static<typeof KeptCaptureParams>; Body: Static<typeof RenameCaptureBody> }>(
    '/api/captures/:keptId',
    { schema: R.renameKept },
    async (req, reply) => {
      const name = checkedName(req.body.name);
      return writing(reply, () => {
        const info = kept.rename(req.params.keptId, name);
        return info ? keptInfoJson(info) : notKept(reply, req.params.keptId);
      });
    },
  );

  app.delete<{ Params: Static<typeof KeptCaptureParams> }>('/api/captures/:keptId', { schema: R.deleteKept }, async (req, reply) =>
    writing(reply, () => (kept.remove(req.params.keptId) ? reply.code(204).send() : notKept(reply, req.params.keptId))),
  );

  app.get<{ Params: Static<typeof KeptCaptureParams> }>('/api/captures/:keptId/csv', { schema: R.keptCsv }, async (req, reply) => {
    const c = kept.get(req.params.keptId);
    if (!c) return notKept(reply, req.params.keptId);
    return reply
      .type('text/csv; charset=utf-8')
      .header('content-disposition', `attachment; filename="${captureFileStem(c)}.csv"`)
      .header('cache-control', 'no-store')
      .send(captureCsv(c));
  });
}
