// The OpenAPI document at /docs/json says what the API does: every operation summarised, optional
// parameters not called required, the WebSocket documented, and every error a route really answers with
// listed for that operation with its real body and content type. That the document is valid OpenAPI 3.1
// is checked by a real validator in the fuzz suite (test/fuzz/run.ts), which also runs schemathesis
// against it on a running server.

import type { TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../server/api/app.ts';
import { DeviceCommandError } from '../../server/api/deps.ts';
import * as S from '../../server/api/schemas.ts';
import { DEVICE, fakes } from './fakes.ts';

interface Operation {
  summary?: string;
  parameters?: { name: string; in: string; required: boolean; schema: { default?: unknown } }[];
  requestBody?: { content: Record<string, { schema: { required?: string[]; properties: Record<string, { default?: unknown }> } }> };
  responses: Record<string, { description: string; content?: Record<string, { schema: unknown }> }>;
}
type Doc = { openapi: string; paths: Record<string, Record<string, Operation>>; security?: unknown[]; components?: { securitySchemes?: object } };

const TOKEN = 'fedcba9876543210fedcba9876543210';
let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function open(token?: string): Promise<{ app: FastifyInstance; doc: Doc; f: ReturnType<typeof fakes> }> {
  const f = fakes();
  app = await buildApp({ ...f, token });
  const r = await app.inject({ method: 'GET', url: '/docs/json' });
  expect(r.statusCode).toBe(200);
  return { app, doc: r.json() as Doc, f };
}

function operations(doc: Doc): [string, Operation][] {
  return Object.entries(doc.paths).flatMap(([path, ops]) => Object.entries(ops).map(([m, op]) => [`${m.toUpperCase()} ${path}`, op] as [string, Operation]));
}

/** The documented operation a request goes to: its path matched against the templates. */
function operationOf(doc: Doc, method: string, url: string): Operation {
  const path = url.split('?')[0]!;
  for (const [template, ops] of Object.entries(doc.paths)) {
    const re = new RegExp(`^${template.replace(/[.]/g, '\\.').replace(/\{[^}]+\}/g, '[^/]+')}$`);
    if (re.test(path) && ops[method.toLowerCase()]) return ops[method.toLowerCase()]!;
  }
  throw new Error(`${method} ${path} is not in the document`);
}

describe('the OpenAPI document', () => {
  it('is OpenAPI 3.1, whose schemas are JSON Schema as the server validates with (numeric exclusiveMinimum)', async () => {
    const { doc } = await open();
    expect(doc.openapi).toBe('3.1.0');
    const durationMs = doc.paths['/api/devices/{id}/captures']!.post!.requestBody!.content['application/json']!.schema.properties.duration_ms;
    expect(durationMs).toMatchObject({ exclusiveMinimum: 0 });
  });

  it('gives every operation a summary', async () => {
    const { doc } = await open();
    const missing = operations(doc).filter(([, op]) => !op.summary).map(([name]) => name);
    expect(missing).toEqual([]);
  });

  it('calls no parameter or body property with a default required', async () => {
    const { doc } = await open();
    const wrong: string[] = [];
    for (const [name, op] of operations(doc)) {
      for (const p of op.parameters ?? []) if (p.required && p.schema.default !== undefined) wrong.push(`${name} ${p.in} ${p.name}`);
      for (const media of Object.values(op.requestBody?.content ?? {})) {
        for (const r of media.schema.required ?? []) if (media.schema.properties[r]?.default !== undefined) wrong.push(`${name} body ${r}`);
      }
    }
    expect(wrong).toEqual([]);
    expect(operationOf(doc, 'GET', '/api/history').parameters!.filter((p) => p.required).map((p) => p.name).sort()).toEqual(['device', 'from', 'to']);
  });

  it('documents the WebSocket and its messages, and a plain GET of it gets a JSON 426 saying what it is', async () => {
    const { app, doc } = await open();
    const live = doc.paths['/api/live']?.get;
    expect(live?.summary).toMatch(/WebSocket/);
    const messages = live!.responses['101']!.content!['application/json']!.schema as { anyOf: { properties: { type: { const?: unknown; enum?: unknown[] } } }[] };
    expect(messages.anyOf.map((m) => m.properties.type.const ?? m.properties.type.enum?.[0]).sort()).toEqual(['devices', 'link', 'window']);

    const r = await app.inject({ method: 'GET', url: '/api/live' });
    expect(r.statusCode).toBe(426);
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    expect(r.json().message).toMatch(/WebSocket/);
    expect(live!.responses['426']).toBeDefined();
  });

  it('lists the guard’s 403 (Host or Origin of another site) on every operation', async () => {
    const { doc } = await open();
    expect(operations(doc).filter(([, op]) => !op.responses['403']).map(([name]) => name)).toEqual([]);
  });

  it('asks for the token, and lists 401 on every operation, when one is configured', async () => {
    const { doc } = await open(TOKEN);
    expect(doc.security).toEqual([{ bearer: [] }, { token: [] }]);
    const without = operations(doc).filter(([, op]) => !op.responses['401']).map(([name]) => name);
    expect(without).toEqual([]);
    const open_ = await open();
    expect(open_.doc.security).toBeUndefined();
  });
});

/** A request, the status the route answers it with, and how to make the fake device fail first. */
interface Case {
  req: InjectOptions & { method: string; url: string };
  status: number;
  token?: boolean;
  fail?: DeviceCommandError;
}
const cal = { v_offset: 0, i_offset: 0, v_gain: 16384, i_gain: 16384, phase: 0, kv: 0.05, ki: 0.004 };
const dev = `/api/devices/${DEVICE}`;
const range = 'from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z';
const CASES: Case[] = [
  { req: { method: 'GET', url: '/api/devices' }, status: 401, token: true },
  { req: { method: 'GET', url: `${dev}/energy` }, status: 401, token: true },
  { req: { method: 'GET', url: '/api/live' }, status: 401, token: true },
  { req: { method: 'GET', url: '/api/devices/a%20b' }, status: 400 },
  { req: { method: 'GET', url: '/api/devices/feedfeed' }, status: 404 },
  { req: { method: 'GET', url: `${dev}/energy?tz=Mars/Olympus` }, status: 400 },
  { req: { method: 'GET', url: '/api/devices/feedfeed/energy' }, status: 404 },
  { req: { method: 'GET', url: '/api/devices/feedfeed/calibration' }, status: 404 },
  { req: { method: 'PUT', url: `${dev}/calibration`, payload: { ...cal, kv: 0 } }, status: 400 },
  { req: { method: 'PUT', url: `${dev}/calibration`, payload: '{"kv":', headers: { 'content-type': 'application/json' } }, status: 400 },
  { req: { method: 'PUT', url: `${dev}/calibration`, payload: '<kv>1</kv>', headers: { 'content-type': 'application/xml' } }, status: 415 },
  { req: { method: 'PUT', url: `${dev}/calibration`, payload: { ...cal, pad: 'x'.repeat(20_000) } }, status: 413 },
  { req: { method: 'PUT', url: '/api/devices/feedfeed/calibration', payload: cal }, status: 404 },
  ...([409, 422, 503, 504] as const).map((s) => ({ req: { method: 'PUT', url: `${dev}/calibration`, payload: cal }, status: s, fail: new DeviceCommandError('as a device would', s) })),
  { req: { method: 'POST', url: `${dev}/captures`, payload: { pairs: 10, pretrigger: 10 } }, status: 400 },
  { req: { method: 'POST', url: '/api/devices/feedfeed/captures', payload: {} }, status: 404 },
  ...([409, 422, 503, 504] as const).map((s) => ({ req: { method: 'POST', url: `${dev}/captures`, payload: {} }, status: s, fail: new DeviceCommandError('as a device would', s) })),
  { req: { method: 'GET', url: `${dev}/captures/x` }, status: 400 },
  { req: { method: 'GET', url: `${dev}/captures/7` }, status: 404 },
  { req: { method: 'GET', url: `/api/history?device=${DEVICE}&from=yesterday&to=now` }, status: 400 },
  { req: { method: 'GET', url: `/api/history?device=feedfeed&${range}` }, status: 404 },
  { req: { method: 'GET', url: `/api/export/estimate?device=${DEVICE}&${range}&interval=2m` }, status: 400 },
  { req: { method: 'GET', url: `/api/export/estimate?device=feedfeed&${range}` }, status: 404 },
  { req: { method: 'GET', url: `/api/export.csv?device=${DEVICE}&${range}&tz=Mars/Olympus` }, status: 400 },
  { req: { method: 'GET', url: `/api/export.csv?device=feedfeed&${range}` }, status: 404 },
  { req: { method: 'GET', url: `/api/export.csv?device=${DEVICE}&${range}` }, status: 200 },
  { req: { method: 'GET', url: '/api/live?device=feedfeed' }, status: 404 },
  { req: { method: 'GET', url: '/api/live?device=a%20b' }, status: 400 },
  { req: { method: 'GET', url: `${dev}/energy/periods?${range}&bucket=day&tz=Europe/Berlin` }, status: 200 },
  { req: { method: 'GET', url: `${dev}/energy/periods?${range}&bucket=fortnight` }, status: 400 },
  { req: { method: 'GET', url: `/api/devices/feedfeed/energy/periods?${range}` }, status: 404 },
  { req: { method: 'GET', url: '/api/tariff' }, status: 200 },
  { req: { method: 'GET', url: `/api/events?device=${DEVICE}&${range}` }, status: 200 },
  { req: { method: 'GET', url: `/api/events?device=feedfeed&${range}` }, status: 404 },
  { req: { method: 'GET', url: `/api/events?device=${DEVICE}&${range}&limit=0` }, status: 400 },
  { req: { method: 'GET', url: `/api/events?device=${DEVICE}&${range}&kind=calibration` }, status: 200 },
  { req: { method: 'GET', url: `/api/events?device=${DEVICE}&${range}&kind=bogus` }, status: 400 },
  { req: { method: 'PUT', url: '/api/tariff', payload: { currency: 'EUR', standing_charge_per_day: 0, bands: [] } }, status: 400 },
];

describe('every answer a route gives is documented for it', () => {
  it.each(CASES)('$req.method $req.url → $status', async (c) => {
    const { app, doc, f } = await open(c.token ? TOKEN : undefined);
    if (c.fail) f.devices.failNext = c.fail;
    const r = await app.inject(c.req);
    expect(r.statusCode).toBe(c.status);
    const documented = operationOf(doc, c.req.method, c.req.url).responses[String(c.status)];
    expect(documented, `${c.status} is not documented for ${c.req.method} ${c.req.url}`).toBeDefined();
    const type = String(r.headers['content-type']).split(';')[0]!;
    expect(Object.keys(documented!.content ?? {})).toEqual([type]);
    if (type === 'application/json') {
      const errors = [...Value.Errors(S.ErrorReply as TSchema, r.json())].map((e) => `${e.path}: ${e.message}`);
      if (c.status >= 400) expect(errors).toEqual([]);
    }
  });
});
