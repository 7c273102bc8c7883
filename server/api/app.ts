// buildApp(options): the HTTP API, WebSocket stream, OpenAPI docs and dashboard as one fastify instance.
// Only the CLI's `serve` listens (see listen.ts for the address and token rules); tests use app.inject.
//
// Routes (all but the dashboard's files and /docs need the token when one is configured: 'Authorization:
// Bearer T' or ?token=T; guard.ts also refuses a Host or Origin that is not this server's):
//   GET  /api/devices                              devices with link state and counters
//   GET  /api/devices/:id                          one device
//   GET  /api/devices/:id/energy?tz=               energy today (local midnight in tz) and in total
//   GET  /api/energy?tz=                           every device's energy today and in total, and the exact sum
//   GET  /api/devices/:id/energy/periods?bucket&from&to&tz  energy and cost per local calendar period (energy.ts)
//   GET  /api/tariff, PUT /api/tariff               the tariff energy is priced with (stored in the database)
//   GET  /api/events?device&from&to&limit&kind      the event log (events.ts)
//   GET  /api/devices/:id/pq/…                     power quality: harmonics, voltage events, their CSV (pq.ts)
//   GET  /api/devices/:id/calibration              calibration registers + kv/ki
//   PUT  /api/devices/:id/calibration              store and push to the device
//   POST /api/devices/:id/captures                 arm a waveform capture
//   GET  /api/devices/:id/captures/:captureId      fetch it (state pending until every chunk arrived)
//   GET/POST /api/captures, GET/PATCH/DELETE /api/captures/:keptId, GET …/csv  captures kept in the database (captures.ts)
//   GET  /api/history?device&from&to&points&fields min/max/mean buckets, gaps as null
//   GET  /api/export.csv?device&from&to&interval&tz streamed CSV, as `crabwatt export`
//   GET  /api/export/estimate?...                  rows the export will have at most (for progress; a
//                                                  separate call, so an export never pays for the count)
//   GET  /api/live?device=                          WebSocket: windows, link events, device counters
//   GET  /metrics                                   Prometheus text exposition of every device (metrics.ts)
//   GET  /docs                                      OpenAPI (Swagger UI); /docs/json is the document

import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import fastifyWebsocket from '@fastify/websocket';
import type { Static } from '@sinclair/typebox';
import { DateTime } from 'luxon';
import {
  DeviceCommandError,
  UnknownDeviceError,
  type DeviceDirectory,
  type ExportQuery,
  type LiveSource,
  type MeasurementStore,
} from './deps.ts';
import { checkFrontEndScale } from '../dsp/limits.ts';
import { pipeChunks, StreamClosedError } from '../export/pipe.ts';
import { installGuard, PUBLIC, registerPublic } from './guard.ts';
import { registerEnergyRoutes } from './energy.ts';
import { registerEventRoutes } from './events.ts';
import { registerCaptureRoutes } from './captures.ts';
import { registerPqRoutes } from './pq.ts';
import { captureJson, deviceJson } from './json.ts';
import { LiveHub, type LiveHubOptions } from './live.ts';
import { Metrics } from './metrics.ts';
import { BadRequestError, checkZone, nwhToWh, parseFields, parseRange } from './params.ts';
import { openapiDocument, routeSchemas } from './contract.ts';
import { refuseCoercedBodies } from './strict-body.ts';
import type * as S from './schemas.ts';
import { buildWebAssets, DEFAULT_WEB_ROOT, type AssetMap } from './web-assets.ts';

export interface AppOptions {
  store: MeasurementStore;
  devices: DeviceDirectory;
  /** Emits 'window' and 'link' (deps.ts); usually the ingest's event emitter. */
  live: LiveSource;
  /** When set, every request but the dashboard's files and the OpenAPI pages must carry it (guard.ts). */
  token?: string | undefined;
  /** Names (or NAME:PORT) clients may reach the server under besides its listen address (`--allow-host`). */
  allowHosts?: readonly string[] | undefined;
  /** Folder with index.html, main.ts, style.css (default: the repository's web/). */
  webRoot?: string;
  logger?: FastifyServerOptions['logger'];
  liveHub?: LiveHubOptions;
  /**
   * Where a failure the client only sees as "internal error (see the server log)" is written, with its stack
   * (serve: its stderr); default: fastify's logger.
   */
  logInternalError?: (line: string) => void;
  /** Largest accepted request body; calibration and capture bodies are a few hundred bytes. */
  bodyLimitBytes?: number;
  /** Bytes the database takes on disk, for /metrics (serve: the file and its write-ahead log). */
  databaseBytes?: () => number;
  /** Serve on a server bound beforehand (serve's BoundServer) instead of fastify's own. */
  serverFactory?: FastifyServerOptions['serverFactory'];
}

declare module 'fastify' {
  interface FastifyInstance {
    liveHub: LiveHub;
  }
}

/** Errors the store and export modules raise for arguments they refuse (matched by name across modules). */
const BAD_REQUEST_ERRORS = new Set(['QueryError', 'ExportArgumentError', 'TariffError']);

export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: opts.bodyLimitBytes ?? 16 * 1024,
    // Shutting down cuts open responses too: a year-long export in flight must not hold up Ctrl-C.
    forceCloseConnections: true,
    // Unknown body properties are rejected rather than silently stripped: a typo in a calibration
    // field must not turn into "nothing changed".
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false } },
    ...(opts.serverFactory ? { serverFactory: opts.serverFactory } : {}),
  });
  const { store, devices } = opts;
  // The path without the query, which may carry the token.
  const logInternal = (req: FastifyRequest, err: Error, what = '') =>
    (opts.logInternalError ?? ((line: string) => app.log.error(line)))(`${req.method} ${req.url.split('?')[0]}${what}: ${err.stack ?? err.message}`);

  app.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown; code?: string }, req, reply) => {
    let status = 500;
    let message = err.message;
    if (err.validation) status = 400;
    else if (err instanceof BadRequestError || BAD_REQUEST_ERRORS.has(err.name)) status = 400;
    else if (err instanceof UnknownDeviceError || err.name === 'UnknownDeviceError') status = 404;
    else if (err instanceof DeviceCommandError) status = err.statusCode;
    else if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) status = err.statusCode;
    if (status >= 500) {
      logInternal(req, err);
      message = 'internal error (see the server log)';
    }
    return reply.code(status).send({ statusCode: status, error: httpReason(status), message });
  });
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ statusCode: 404, error: 'Not Found', message: `no route for ${req.method} ${req.url.split('?')[0]}` }),
  );

  await app.register(fastifySwagger, { openapi: openapiDocument(opts.token !== undefined) });
  await registerPublic(app, async (docs) => {
    await docs.register(fastifySwaggerUi, { routePrefix: '/docs' });
  });
  await app.register(fastifyWebsocket, { options: { maxPayload: 4096 } });

  // After the WebSocket plugin (see installGuard).
  installGuard(app, { token: opts.token, allowHosts: opts.allowHosts });

  refuseCoercedBodies(app);
  const hub = new LiveHub(opts.live, devices, opts.liveHub);
  app.decorate('liveHub', hub);
  app.addHook('onClose', async () => hub.close());
  const metrics = new Metrics({
    devices, store, live: opts.live, ...(opts.databaseBytes ? { databaseBytes: opts.databaseBytes } : {}),
  });
  app.addHook('onClose', async () => metrics.close());

  const mustDevice = (id: string) => {
    const d = devices.get(id);
    if (!d) throw new UnknownDeviceError(id);
    return d;
  };
  const R = routeSchemas(opts.token !== undefined);

  app.get('/metrics', { schema: R.metrics }, async (_req, reply) => reply.type(metrics.contentType).send(await metrics.render()));

  app.get('/api/devices', { schema: R.listDevices }, async () => ({
    devices: devices.list().map(deviceJson),
  }));

  app.get<{ Params: Static<typeof S.DeviceParams> }>(
    '/api/devices/:id',
    { schema: R.getDevice },
    async (req) => deviceJson(mustDevice(req.params.id)),
  );

  app.get<{ Params: Static<typeof S.DeviceParams>; Querystring: Static<typeof S.EnergyQuery> }>(
    '/api/devices/:id/energy',
    { schema: R.getEnergy },
    async (req) => {
      mustDevice(req.params.id);
      const tz = checkZone(req.query.tz ?? 'UTC');
      const dayStart = DateTime.now().setZone(tz).startOf('day');
      const e = store.energy(req.params.id, dayStart.toMillis());
      return {
        device: req.params.id,
        tz,
        day_start: dayStart.toISO() ?? '',
        today_wh: nwhToWh(e.sinceNwh),
        total_wh: nwhToWh(e.totalNwh),
        today_nwh: e.sinceNwh.toString(),
        total_nwh: e.totalNwh.toString(),
      };
    },
  );

  app.get<{ Querystring: Static<typeof S.EnergyQuery> }>('/api/energy', { schema: R.allEnergy }, async (req) => {
    const tz = checkZone(req.query.tz ?? 'UTC');
    const dayStart = DateTime.now().setZone(tz).startOf('day');
    const figures = (today: bigint, total: bigint) => ({
      today_wh: nwhToWh(today), total_wh: nwhToWh(total), today_nwh: today.toString(), total_nwh: total.toString(),
    });
    let today = 0n;
    let total = 0n;
    const each = devices.list().filter((d) => d.id !== '').map((d) => {
      const e = store.energy(d.id, dayStart.toMillis());
      today += e.sinceNwh;
      total += e.totalNwh;
      return { device: d.id, ...figures(e.sinceNwh, e.totalNwh) };
    });
    return { tz, day_start: dayStart.toISO() ?? '', devices: each, ...figures(today, total) };
  });
  registerEnergyRoutes(app, store, mustDevice, R);
  registerEventRoutes(app, store, mustDevice, R);
  registerPqRoutes(app, store, mustDevice, R);

  app.get<{ Params: Static<typeof S.DeviceParams> }>(
    '/api/devices/:id/calibration',
    { schema: R.getCalibration },
    async (req) => {
      mustDevice(req.params.id);
      const c = devices.calibration(req.params.id);
      return { calibration: c.calibration, config_seq: c.configSeq };
    },
  );

  app.put<{ Params: Static<typeof S.DeviceParams>; Body: Static<typeof S.CalibrationSchema> }>(
    '/api/devices/:id/calibration',
    { schema: R.putCalibration },
    async (req) => {
      mustDevice(req.params.id);
      // The product of the scales, which the schema cannot express (ScaleRangeError: 422 with the range).
      checkFrontEndScale(req.body.kv, req.body.ki);
      const { configSeq } = await devices.setCalibration(req.params.id, req.body);
      return { calibration: devices.calibration(req.params.id).calibration, config_seq: configSeq };
    },
  );

  app.post<{ Params: Static<typeof S.DeviceParams>; Body: S.CaptureBodyT }>(
    '/api/devices/:id/captures',
    { schema: R.postCapture },
    async (req, reply) => {
      mustDevice(req.params.id);
      const body = req.body;
      if (body.pretrigger >= body.pairs) {
        throw new BadRequestError(`'pretrigger' (${body.pretrigger}) must be smaller than 'pairs' (${body.pairs})`);
      }
      const spans = (['decimation', 'duration_ms', 'cycles'] as const).filter((k) => body[k] !== undefined);
      if (spans.length > 1) {
        throw new BadRequestError(`give at most one of 'decimation', 'duration_ms' and 'cycles', not ${spans.map((k) => `'${k}'`).join(' and ')}`);
      }
      const { captureId } = await devices.requestCapture(req.params.id, {
        pairs: body.pairs,
        trigger: body.trigger,
        level: body.level,
        pretrigger: body.pretrigger,
        hysteresis: body.hysteresis,
        ...(body.decimation !== undefined && { decimation: body.decimation }),
        ...(body.duration_ms !== undefined && { durationMs: body.duration_ms }),
        ...(body.cycles !== undefined && { cycles: body.cycles }),
      });
      return reply
        .code(202)
        .send({ capture_id: captureId, href: `/api/devices/${encodeURIComponent(req.params.id)}/captures/${captureId}` });
    },
  );

  app.get<{ Params: Static<typeof S.CaptureParams> }>(
    '/api/devices/:id/captures/:captureId',
    { schema: R.getCapture },
    async (req, reply) => {
      mustDevice(req.params.id);
      const c = devices.capture(req.params.id, req.params.captureId);
      if (!c) {
        return reply.code(404).send({
          statusCode: 404,
          error: 'Not Found',
          message: `no capture ${req.params.captureId} on '${req.params.id}': POST /api/devices/${req.params.id}/captures first`,
        });
      }
      return captureJson(c);
    },
  );
  registerCaptureRoutes(app, store, devices, mustDevice, R);

  app.get<{ Querystring: S.HistoryQueryT }>(
    '/api/history',
    { schema: R.history },
    async (req) => {
      const q = req.query;
      const { fromMs, toMs } = parseRange(q.from, q.to);
      const fields = parseFields(q.fields);
      mustDevice(q.device);
      const r = store.history({ device: q.device, fromMs, toMs, points: q.points, fields });
      return { device: q.device, from: fromMs, to: toMs, level: r.level, bucket_ms: r.bucketMs, t: r.t, series: r.series };
    },
  );

  const exportQuery = (q: S.ExportQueryT): ExportQuery => {
    const tz = checkZone(q.tz);
    const { fromMs, toMs } = parseRange(q.from, q.to, tz);
    mustDevice(q.device);
    return { device: q.device, fromMs, toMs, interval: q.interval, tz };
  };

  app.get<{ Querystring: S.ExportQueryT }>(
    '/api/export/estimate',
    { schema: R.exportEstimate },
    async (req) => ({ rows: store.estimateExportRows(exportQuery(req.query)) }),
  );

  app.get<{ Querystring: S.ExportQueryT }>(
    '/api/export.csv',
    { schema: R.exportCsv },
    async (req, reply) => {
      const q = exportQuery(req.query);
      // Pull the first piece before any header goes out, so an error the store raises on the query itself
      // still becomes a proper 4xx response instead of a truncated 200.
      const it = store.exportCsv(q)[Symbol.iterator]();
      let first: IteratorResult<Uint8Array>;
      try {
        first = it.next();
      } catch (err) {
        it.return?.();
        throw err;
      }
      const stamp = (ms: number) => new Date(ms).toISOString().replace(/[:]/g, '').replace(/\.\d+Z$/, 'Z');
      // The body is written to the socket here (pipe.ts: a fixed set of buffers, no allocation per chunk),
      // not handed to fastify as a stream, which would take a fresh Buffer per chunk.
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/csv; charset=utf-8',
        'content-disposition': `attachment; filename="crabwatt-${q.device}-${stamp(q.fromMs)}-${stamp(q.toMs)}-${q.interval}.csv"`,
        'cache-control': 'no-store',
      });
      if (req.method === 'HEAD') {
        // Headers only: a year's export is not formatted for a body nobody receives.
        if (!first.done) it.return?.();
        res.end();
        return;
      }
      try {
        await pipeChunks(resumed(first, it), res);
        res.end();
      } catch (err) {
        // Headers are out: the only honest signal left is a cut connection (no final chunk), never a short 200.
        if (!(err instanceof StreamClosedError)) logInternal(req, err as Error, ' (CSV cut mid-stream)');
        res.destroy();
      }
    },
  );

  // wsHandler beside a plain handler (rather than `websocket: true`, which @fastify/websocket hides from the
  // document and answers with a bare 404) so the route is documented and a plain GET learns what it is.
  app.route<{ Querystring: Static<typeof S.LiveQuery> }>({
    method: 'GET',
    url: '/api/live',
    schema: R.live,
    preHandler: async (req) => {
      if (req.query.device !== undefined) mustDevice(req.query.device);
    },
    handler: async (req, reply) =>
      reply
        .code(426)
        .header('upgrade', 'websocket')
        .header('connection', 'Upgrade')
        .send({ statusCode: 426, error: httpReason(426), message: `${req.url.split('?')[0]} is a WebSocket: connect with 'Upgrade: websocket'` }),
    wsHandler: (socket, req) => hub.add(socket, req.query.device),
  });

  registerWeb(app, opts.webRoot ?? DEFAULT_WEB_ROOT);
  return app;
}

/** The export's pieces with the first one, already pulled, in front. */
function* resumed(first: IteratorResult<Uint8Array>, it: Iterator<Uint8Array>): Generator<Uint8Array> {
  let r = first;
  try {
    while (!r.done) {
      yield r.value;
      r = it.next();
    }
  } finally {
    if (!r.done) it.return?.();
  }
}

/** The dashboard loads only its own bundle and talks only to this server (HTTP and WebSocket). */
const DASHBOARD_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

function registerWeb(app: FastifyInstance, webRoot: string): void {
  let assets: Promise<AssetMap> | undefined;
  const serve = async (name: string, req: FastifyRequest, reply: FastifyReply) => {
    assets ??= buildWebAssets(webRoot);
    let map: AssetMap;
    try {
      map = await assets;
    } catch (err) {
      assets = undefined; // a fixed source file should not need a restart
      throw err;
    }
    const a = map.get(name);
    if (!a) {
      return reply.code(404).send({ statusCode: 404, error: 'Not Found', message: `no asset '${name}'` });
    }
    reply.header('etag', a.etag).header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff');
    if (name === '') reply.header('content-security-policy', DASHBOARD_CSP);
    if (req.headers['if-none-match'] === a.etag) return reply.code(304).send();
    return reply.type(a.contentType).send(a.body);
  };
  const hide = { schema: { hide: true }, config: PUBLIC };
  app.get('/', hide, (req, reply) => serve('', req, reply));
  app.get('/favicon.svg', hide, (req, reply) => serve('favicon.svg', req, reply));
  app.get<{ Params: { '*': string } }>('/assets/*', hide, (req, reply) => serve(`assets/${req.params['*']}`, req, reply));
}

function httpReason(status: number): string {
  const reasons: Record<number, string> = {
    400: 'Bad Request',
    401: 'Unauthorized',
    404: 'Not Found',
    409: 'Conflict',
    413: 'Payload Too Large',
    415: 'Unsupported Media Type',
    422: 'Unprocessable Entity',
    426: 'Upgrade Required',
    500: 'Internal Server Error',
    503: 'Service Unavailable',
    504: 'Gateway Timeout',
  };
  return reasons[status] ?? 'Error';
}
