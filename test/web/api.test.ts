// web/api.ts takes the dashboard's JSON types from the server's TypeBox schemas. These tests hold the
// three ends of that together: what the server sends matches the schemas (REST replies and the
// WebSocket messages, which nothing validates on the way out), the dashboard's requests are ones the
// server accepts, and the type-only imports leave TypeBox and server code out of the browser bundle.
//
// The expectTypeOf lines are checked by `npx tsc -p tsconfig.json --noEmit` (test/ is in the project),
// not at run time.

import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import type { WebSocket } from 'ws';
import { buildApp } from '../../server/api/app.ts';
import { EXPORT_INTERVALS, HISTORY_FIELDS, type LinkEvent } from '../../server/api/deps.ts';
import { captureJson, deviceJson, linkJson, windowJson } from '../../server/api/json.ts';
import { LiveHub } from '../../server/api/live.ts';
import * as S from '../../server/api/schemas.ts';
import { DEFAULT_WEB_ROOT, buildWebAssets } from '../../server/api/web-assets.ts';
import type { CaptureJson, DeviceJson, LinkMsg, LiveMsg, WindowMsg } from '../../web/api.ts';
import { parseSpan, planCapture } from '../../web/capture.ts';
import { DEVICE, FakeDevices, T0, fakes, liveWindow } from '../api/fakes.ts';

/** Passes when `value` fits `schema`; otherwise fails with TypeBox's first complaints (path and message). */
function expectFits(schema: TSchema, value: unknown): void {
  const errors = [...Value.Errors(schema, value)].slice(0, 5).map((e) => `${e.path || '/'}: ${e.message}`);
  expect(errors).toEqual([]);
}

describe('the schemas describe what the server sends', () => {
  it('the json.ts builders have exactly the schemas’ types', () => {
    expectTypeOf<ReturnType<typeof deviceJson>>().toEqualTypeOf<DeviceJson>();
    expectTypeOf<ReturnType<typeof windowJson>>().toEqualTypeOf<WindowMsg>();
    expectTypeOf<ReturnType<typeof linkJson>>().toEqualTypeOf<LinkMsg>();
    expectTypeOf<ReturnType<typeof captureJson>>().toEqualTypeOf<CaptureJson>();
  });

  it('every WebSocket message fits LiveMessage, and a message of the wrong shape does not', () => {
    const source = new EventEmitter();
    const devices = new FakeDevices();
    devices.info = { ...devices.info, path: '/dev/ttyACM0', state: 'bootloader', detail: 'in DFU mode' };
    const hub = new LiveHub(source, devices, { devicesIntervalMs: 60_000 });
    const sent: string[] = [];
    const socket = Object.assign(new EventEmitter(), { readyState: 1, bufferedAmount: 0, send: (t: string) => sent.push(t), close: () => undefined });
    hub.add(socket as unknown as WebSocket, undefined);
    source.emit('window', liveWindow(T0));
    // No mains: no power factor and no frequency.
    source.emit('window', { ...liveWindow(T0 + 200, 0), pf: null, freq_hz: null, energy_nwh: -3n });
    const link: LinkEvent = { device: DEVICE, state: 'reconnecting', detail: 'port vanished' };
    source.emit('link', link);
    hub.close();

    const msgs = sent.map((t) => JSON.parse(t) as LiveMsg);
    expect(msgs.map((m) => m.type)).toEqual(['devices', 'window', 'window', 'link']);
    for (const m of msgs) expectFits(S.LiveMessage, m);
    expectFits(S.LiveDevicesMessage, msgs[0]);
    expectFits(S.LiveWindowMessage, msgs[2]);
    expectFits(S.LiveLinkMessage, msgs[3]);
    // The schema is strict enough to tell: the exact energy is a string, not a float.
    expect(Value.Check(S.LiveMessage, { ...msgs[1], energy_nwh: 55_555 })).toBe(false);
    expect(Value.Check(S.LiveMessage, { ...msgs[3], state: 'asleep' })).toBe(false);
  });
});

describe('the dashboard’s requests, answered by the server', () => {
  let f: ReturnType<typeof fakes>;
  let app: FastifyInstance;
  beforeAll(async () => {
    f = fakes();
    app = await buildApp({ ...f });
  });
  afterAll(async () => {
    await app.close();
  });
  const get = (url: string) => app.inject({ method: 'GET', url });

  it('devices, energy and history replies fit the schemas web/api.ts types them with', async () => {
    const devices = await get('/api/devices');
    expect(devices.statusCode).toBe(200);
    expectFits(S.DeviceList, devices.json());
    const energy = await get(`/api/devices/${DEVICE}/energy?tz=Europe/Berlin`);
    expect(energy.statusCode).toBe(200);
    expectFits(S.EnergyReply, energy.json());
    const q = new URLSearchParams({ device: DEVICE, from: String(T0), to: String(T0 + 3_600_000), points: '100', fields: 'p' });
    const history = await get(`/api/history?${q}`);
    expect(history.statusCode).toBe(200);
    expectFits(S.HistoryReply, history.json());
    const estimate = await get(`/api/export/estimate?${new URLSearchParams({ device: DEVICE, from: String(T0), to: String(T0 + 60_000), interval: '1s' })}`);
    expect(estimate.statusCode).toBe(200);
    expectFits(S.ExportEstimateReply, estimate.json());
  });

  it('accepts every capture the span menu can plan, and its reply fits CaptureReply', async () => {
    const html = readFileSync(join(DEFAULT_WEB_ROOT, 'index.html'), 'utf8');
    const spans = selectOptions(html, 'capture-span');
    expect(spans.length).toBeGreaterThan(2);
    for (const span of spans) {
      for (const freqHz of [null, 50, 60]) {
        const { body } = planCapture(parseSpan(span), freqHz, 4e6);
        // Value.Check is stricter than the route (no defaults filled in, no coercion).
        expectFits(S.CaptureBody, body);
        const created = await app.inject({ method: 'POST', url: `/api/devices/${DEVICE}/captures`, payload: body });
        expect(created.statusCode, `${span} at ${freqHz} Hz: ${created.body}`).toBe(202);
        expectFits(S.CaptureCreated, created.json());
        const reply = await get(created.json().href);
        expect(reply.statusCode).toBe(200);
        expectFits(S.CaptureReply, reply.json());
      }
    }
  });

  it('the page offers only history fields and export intervals the server knows', () => {
    const html = readFileSync(join(DEFAULT_WEB_ROOT, 'index.html'), 'utf8');
    const fields = selectOptions(html, 'hist-field');
    expect(fields).toContain('p');
    for (const k of fields) expect(HISTORY_FIELDS).toContain(k);
    expect(selectOptions(html, 'exp-interval')).toEqual([...EXPORT_INTERVALS]);
  });
});

describe('the browser bundle', () => {
  it('is built from web/ and uPlot alone: the type imports pull in neither TypeBox nor server code', async () => {
    const assets = await buildWebAssets();
    const map = assets.get('assets/app.js.map');
    const js = assets.get('assets/app.js');
    expect(map && js).toBeTruthy();
    // The source map lists every module esbuild put into the bundle, relative to its outdir (/assets).
    const sources = (JSON.parse(map!.body.toString('utf8')) as { sources: string[] }).sources.map((s) => resolve('/assets', s));
    const webRoot = resolve(DEFAULT_WEB_ROOT);
    const uplot = resolve(DEFAULT_WEB_ROOT, '..', 'node_modules', 'uplot');
    expect(sources).toContain(join(webRoot, 'api.ts'));
    expect(sources).toContain(join(webRoot, 'main.ts'));
    const foreign = sources.filter((s) => !s.startsWith(webRoot + '/') && !s.startsWith(uplot + '/'));
    expect(foreign).toEqual([]);
    // TypeBox marks its schemas with Symbol.for('TypeBox.Kind'): the name would survive minifying.
    expect(js!.body.toString('utf8')).not.toContain('TypeBox');
  });
});

/** The option values of `<select id="…">` in the page (the markup is ours: no attributes before value). */
function selectOptions(html: string, id: string): string[] {
  const block = new RegExp(`<select id="${id}"[^>]*>([\\s\\S]*?)</select>`).exec(html);
  if (!block) throw new Error(`index.html has no <select id="${id}">`);
  return [...block[1]!.matchAll(/<option value="([^"]*)"/g)].map((m) => m[1]!);
}
