// Each route's contract: what it takes (validated by fastify before the handler runs) and every status
// it answers with, as the OpenAPI document at /docs/json publishes it. An error status listed here is one
// the route really sends, with the error handler's body (ErrorReply); test/api/openapi.test.ts holds the
// document to OpenAPI 3.1 and test/fuzz runs schemathesis against it.
//
// The document is OpenAPI 3.1 because its Schema Object is JSON Schema (2020-12): the TypeBox schemas
// ajv validates with (numeric exclusiveMinimum, const, type null) are published as they are, so the
// document cannot drift from the validation the way a 3.0 translation of them could.

import type { SwaggerOptions } from '@fastify/swagger';
import { Type, type TSchema } from '@sinclair/typebox';
import * as S from './schemas.ts';
import { energyRouteSchemas } from './energy-schemas.ts';
import { eventRouteSchemas } from './events.ts';
import { captureRouteSchemas } from './captures.ts';
import { pqRouteSchemas } from './pq.ts';

/** An error reply, described by when the route sends it. */
const error = (description: string) => Type.Object(S.ErrorReply.properties, { description });

const BAD_REQUEST = error('a parameter or body that does not fit the schema, or a value the route refuses; the message names it and says what is accepted');
const NO_DEVICE = error('no device with this id');
const BODY_ERRORS = {
  413: error('body larger than the limit (16 KiB by default)'),
  415: error("body not 'application/json'"),
};
const DEVICE_COMMAND_ERRORS = {
  409: error('the device is busy (a capture in progress): retry'),
  422: error('the device refused the values, or it cannot do what was asked yet (the message says why)'),
  503: error('the device is not connected, or the link failed while sending'),
  504: error('the device did not answer in time'),
};

const devices = (summary: string) => ({ tags: ['devices'], summary });

function routes() {
  return {
    listDevices: { ...devices('List the devices with link state and counters'), response: { 200: S.DeviceList } },
    getDevice: {
      ...devices('One device'),
      params: S.DeviceParams,
      response: { 200: S.DeviceSchema, 400: BAD_REQUEST, 404: NO_DEVICE },
    },
    getEnergy: {
      ...devices('Energy today (since local midnight in tz) and in total, exact in nWh'),
      params: S.DeviceParams,
      querystring: S.EnergyQuery,
      response: { 200: S.EnergyReply, 400: BAD_REQUEST, 404: NO_DEVICE },
    },
    allEnergy: {
      ...devices('Energy today and in total of every device, and their sum, exact in nWh'),
      querystring: S.EnergyQuery,
      response: { 200: S.AllEnergyReply, 400: BAD_REQUEST },
    },
    getCalibration: {
      tags: ['calibration'],
      summary: "The device's stored calibration (registers and kv/ki)",
      params: S.DeviceParams,
      response: { 200: S.CalibrationReply, 400: BAD_REQUEST, 404: NO_DEVICE },
    },
    putCalibration: {
      tags: ['calibration'],
      summary: 'Store a calibration and push it to the device',
      params: S.DeviceParams,
      body: S.CalibrationSchema,
      response: {
        200: S.CalibrationReply, 400: BAD_REQUEST, 404: NO_DEVICE, ...BODY_ERRORS, ...DEVICE_COMMAND_ERRORS,
        422: error('values the arithmetic cannot hold together (the message gives the range), or the device refused them'),
      },
    },
    postCapture: {
      tags: ['captures'],
      summary: 'Arm a waveform capture',
      params: S.DeviceParams,
      body: S.CaptureBody,
      response: { 202: S.CaptureCreated, 400: BAD_REQUEST, 404: NO_DEVICE, ...BODY_ERRORS, ...DEVICE_COMMAND_ERRORS },
    },
    getCapture: {
      tags: ['captures'],
      summary: 'A capture (state pending until every chunk arrived)',
      params: S.CaptureParams,
      response: { 200: S.CaptureReply, 400: BAD_REQUEST, 404: error('no device with this id, or no capture with this number on it') },
    },
    history: {
      tags: ['history'],
      summary: 'Min/max/mean buckets over a time range, gaps as null',
      querystring: S.HistoryQuerySchema,
      response: { 200: S.HistoryReply, 400: BAD_REQUEST, 404: NO_DEVICE },
    },
    exportEstimate: {
      tags: ['export'],
      summary: 'Rows the CSV export of this query will have at most (for progress)',
      querystring: S.ExportQuerySchema,
      response: { 200: S.ExportEstimateReply, 400: BAD_REQUEST, 404: NO_DEVICE },
    },
    exportCsv: {
      tags: ['export'],
      summary: 'Streamed CSV export, as `crabwatt export`',
      querystring: S.ExportQuerySchema,
      response: {
        200: {
          description: 'CSV, header line first; a failure after the headers cuts the connection (no final chunk), never a short 200',
          content: { 'text/csv': { schema: Type.String() } },
        },
        400: BAD_REQUEST,
        404: NO_DEVICE,
      },
    },
    metrics: {
      tags: ['metrics'],
      summary: 'Prometheus metrics of every device (text exposition format 0.0.4)',
      description:
        'Per device (label device): counters crabwatt_energy_wh_total (the exact nWh ledger in Wh), frames, CRC errors, ' +
        'sequence gaps, duplicate windows, device resets and windows; with the power-quality analysis, waveform frames, ' +
        'lost stream samples and stream gaps, analysed and gap windows, voltage events; gauges of the last window (V, I, P, S, PF, f) while ' +
        'connected, crabwatt_link_state and crabwatt_ingest_lag_seconds; and crabwatt_database_bytes. With a token ' +
        "configured, scrape with 'Authorization: Bearer T' (Prometheus: authorization.credentials_file).",
      response: {
        200: {
          description: 'the text exposition, with HELP and TYPE for every metric',
          content: { 'text/plain': { schema: Type.String() } },
        },
      },
    },
    ...energyRouteSchemas({ badRequest: BAD_REQUEST, noDevice: NO_DEVICE, bodyErrors: BODY_ERRORS, error }),
    ...eventRouteSchemas({ badRequest: BAD_REQUEST, noDevice: NO_DEVICE }),
    ...captureRouteSchemas({ badRequest: BAD_REQUEST, bodyErrors: BODY_ERRORS, error }),
    ...pqRouteSchemas({ badRequest: BAD_REQUEST, noDevice: NO_DEVICE, error }),
    live: {
      tags: ['live'],
      summary: 'WebSocket stream of windows, link events and the device list',
      description:
        'Connect with `Upgrade: websocket` (browsers pass the token as ?token=T). Every text message is one JSON ' +
        'document, one of LiveMessage: the device list first and then every second, windows and link events as ' +
        'they happen (of one device with ?device=). A client too far behind misses messages, and one far behind ' +
        'is disconnected.',
      querystring: S.LiveQuery,
      response: {
        101: {
          description: 'Switching Protocols: the WebSocket is open; each message is a LiveMessage',
          content: { 'application/json': { schema: S.LiveMessage } },
        },
        400: BAD_REQUEST,
        404: NO_DEVICE,
        426: error('a plain HTTP request: this route is a WebSocket'),
      },
    },
  } satisfies Record<string, RouteSchema>;
}

interface RouteSchema {
  tags: string[];
  summary: string;
  description?: string;
  params?: TSchema;
  querystring?: TSchema;
  body?: TSchema;
  response: Record<number, TSchema | { description: string; content: Record<string, { schema: TSchema }> }>;
}

/**
 * Every route's schema. Each also answers 403 to a request whose Host or Origin names another site than
 * this server (the guard against cross-site and DNS-rebinding requests), and with a token configured 401;
 * the document then says which credentials it takes.
 */
export function routeSchemas(tokenRequired: boolean): ReturnType<typeof routes> {
  const all = routes();
  const forbidden = error("the Host or Origin header names another site than this server (the message says how to allow a name)");
  const unauthorized = error("missing or wrong token: send 'Authorization: Bearer T' or ?token=T");
  for (const r of Object.values(all)) Object.assign(r.response, { 403: forbidden }, tokenRequired && { 401: unauthorized });
  return all;
}

/** The document's own fields (@fastify/swagger's `openapi` option). */
export function openapiDocument(tokenRequired: boolean): NonNullable<Extract<SwaggerOptions, { openapi?: unknown }>['openapi']> {
  return {
    openapi: '3.1.0',
    info: { title: 'crabwatt', version: '0.1.0', description: 'Energy monitor: live windows, history, export, calibration, captures.' },
    ...(tokenRequired && {
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer' },
          token: { type: 'apiKey', in: 'query', name: 'token', description: 'for browsers and WebSockets, which cannot set headers' },
        },
      },
      security: [{ bearer: [] }, { token: [] }],
    }),
  };
}
