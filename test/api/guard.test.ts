// The guard (server/api/guard.ts): the token is checked by the route the router resolved, whatever the
// path's spelling, and a Host or Origin that is not this server's gets 403 (issue 10, items 1 and 2).

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { hostname } from 'node:os';
import WebSocket from 'ws';
import { buildApp } from '../../server/api/app.ts';
import { DEVICE, T0, fakes } from './fakes.ts';
import { absoluteForms, attempts, leaksData, rawGet, rawRequest, routes, SPELLINGS } from './spellings.ts';

const TOKEN = 'correct-horse-battery-staple';

describe('token, by the resolved route', () => {
  let f: ReturnType<typeof fakes>;
  let app: FastifyInstance;
  beforeEach(async () => {
    f = fakes();
    app = await buildApp({ ...f, token: TOKEN });
  });
  afterEach(async () => app.close());

  it('the table is not vacuous: every route answers with the token', async () => {
    f.store.exportRows = 1;
    for (const r of routes(DEVICE, T0 + 60_000, f.devices.calibration(DEVICE).calibration)) {
      if (r.method !== 'GET' && r.method !== 'PUT' && r.method !== 'POST') continue;
      if (r.target === '/api/live') continue; // a WebSocket route; the upgrade is tested below
      const res = await app.inject({ method: r.method as 'GET', url: r.target, headers: { authorization: `Bearer ${TOKEN}` }, ...(r.body ? { payload: r.body as object } : {}) });
      expect([200, 202], `${r.label}: ${res.body}`).toContain(res.statusCode);
    }
  });

  it('refuses every spelling of every route without the token (401, no data, nothing changed)', async () => {
    const wrong: string[] = [];
    for (const a of attempts(DEVICE, T0 + 60_000, f.devices.calibration(DEVICE).calibration)) {
      const res = await app.inject({ method: a.method as 'GET', url: a.target, ...(a.body ? { payload: a.body as object } : {}) });
      if (res.statusCode !== 401 || leaksData(res.body, DEVICE)) wrong.push(`${a.label} [${a.target}] → ${res.statusCode} ${res.body.slice(0, 80)}`);
    }
    expect(wrong).toEqual([]);
    expect(f.devices.pushed).toEqual([]);
    expect(f.devices.captureRequests).toEqual([]);
    expect(f.store.exportCalls).toEqual([]);
  });

  it('refuses the WebSocket upgrade in every spelling', async () => {
    await app.ready();
    for (const [name, spell] of SPELLINGS) {
      await expect(app.injectWS(spell('/api/live')), name).rejects.toThrow(/401/);
    }
    const ws = await app.injectWS(`/api/live?token=${TOKEN}`);
    ws.terminate();
  });

  it('refuses absolute-form request lines on a real socket', async () => {
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const { host, port } = new URL(url);
    for (const target of absoluteForms(host, DEVICE)) {
      const res = await rawGet(Number(port), target, [`Host: ${host}`]);
      expect([401, 403], `${target}: ${res.status} ${res.body}`).toContain(res.status);
      expect(leaksData(res.body, DEVICE), target).toBe(false);
    }
    // Asterisk-form: the router takes `GET *` for `/`, the (public) dashboard shell; nothing else.
    for (const method of ['GET', 'OPTIONS', 'PUT']) {
      const res = await rawRequest(Number(port), method, '*', [`Host: ${host}`]);
      expect([200, 401], `${method} *: ${res.status}`).toContain(res.status);
      expect(leaksData(res.body, DEVICE), `${method} *`).toBe(false);
    }
  });

  it('keeps the dashboard and the OpenAPI pages public, in their own spellings only', async () => {
    for (const url of ['/', '/favicon.svg', '/docs', '/docs/json']) expect((await app.inject({ url })).statusCode, url).toBe(200);
    // A path the router does not match is not public just because it looks like one.
    expect((await app.inject({ url: '/docs/../api/devices' })).statusCode).toBe(401);
    expect((await app.inject({ url: '/assets/../api/devices' })).statusCode).toBe(401);
  });
});

/** A server listening for real (the Host check needs the address it is served on); `extra` as buildApp. */
async function listening(extra: { token?: string; allowHosts?: string[] } = {}, host = '127.0.0.1') {
  const f = fakes();
  const app = await buildApp({ ...f, ...extra });
  await app.listen({ host, port: 0 });
  const port = (app.server.address() as { port: number }).port;
  return { f, app, port };
}

describe('Host and Origin', () => {
  let s: Awaited<ReturnType<typeof listening>>;
  afterEach(async () => s.app.close());

  it('serves a loopback server under its loopback names and its port only', async () => {
    s = await listening();
    const p = s.port;
    for (const host of [`127.0.0.1:${p}`, `localhost:${p}`, `LOCALHOST:${p}`, `[::1]:${p}`, `localhost.:${p}`]) {
      expect((await rawGet(p, '/api/devices', [`Host: ${host}`])).status, host).toBe(200);
    }
    // A rebinding page's own name, the right name on another port, a name-less Host, garbage.
    for (const host of [`evil.example:${p}`, `evil.example`, `127.0.0.1:${p + 1}`, 'localhost', `127.0.0.1.evil.example:${p}`, `a@127.0.0.1:${p}`]) {
      const res = await rawGet(p, '/api/devices', [`Host: ${host}`]);
      expect(res.status, host).toBe(403);
      expect(JSON.parse(res.body).message, host).toMatch(/not a name of this server.*--allow-host/);
      expect(leaksData(res.body, DEVICE)).toBe(false);
    }
  });

  it('refuses requests from pages of another origin, reads and writes alike', async () => {
    s = await listening();
    const p = s.port;
    for (const origin of [`http://127.0.0.1:${p}`, `http://localhost:${p}`]) {
      expect((await rawGet(p, '/api/devices', [`Host: 127.0.0.1:${p}`, `Origin: ${origin}`])).status, origin).toBe(200);
    }
    for (const origin of ['http://evil.example', `http://evil.example:${p}`, 'null', `file://`, `http://127.0.0.1:${p + 1}`, `ftp://127.0.0.1:${p}`]) {
      const res = await rawGet(p, '/api/devices', [`Host: 127.0.0.1:${p}`, `Origin: ${origin}`]);
      expect(res.status, origin).toBe(403);
      expect(JSON.parse(res.body).message).toMatch(/another origin/);
    }
    const put = await rawRequest(p, 'PUT', `/api/devices/${DEVICE}/calibration`, [`Host: 127.0.0.1:${p}`, 'Origin: http://evil.example'], s.f.devices.calibration(DEVICE).calibration);
    expect(put.status).toBe(403);
    expect(s.f.devices.pushed).toEqual([]);
  });

  it('checks the WebSocket Origin; clients without one (not browsers) keep working', async () => {
    s = await listening();
    const url = `ws://127.0.0.1:${s.port}/api/live`;
    const status = (ws: WebSocket) =>
      new Promise<number>((resolve) => {
        ws.on('open', () => resolve(101));
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      });
    const evil = new WebSocket(url, { origin: 'http://evil.example' });
    expect(await status(evil)).toBe(403);
    const same = new WebSocket(url, { origin: `http://localhost:${s.port}` });
    expect(await status(same)).toBe(101);
    same.terminate();
    const bare = new WebSocket(url);
    expect(await status(bare)).toBe(101);
    bare.terminate();
  });

  it('answers to --allow-host names, with any port or the one given', async () => {
    s = await listening({ allowHosts: ['crabwatt.example.org', 'meter.lan:8443'] });
    const p = s.port;
    const ok = async (host: string, origin?: string) =>
      (await rawGet(p, '/api/devices', [`Host: ${host}`, ...(origin ? [`Origin: ${origin}`] : [])])).status;
    expect(await ok('crabwatt.example.org')).toBe(200);
    expect(await ok('crabwatt.example.org:443', 'https://crabwatt.example.org')).toBe(200);
    expect(await ok('meter.lan:8443', 'https://meter.lan:8443')).toBe(200);
    expect(await ok('meter.lan:8444')).toBe(403);
    expect(await ok('other.example.org')).toBe(403);
    expect(await ok(`127.0.0.1:${p}`, 'https://evil.example')).toBe(403);
  });

  it('on a wildcard address answers to IP literals and this machine name, not to other names', async () => {
    s = await listening({ token: TOKEN }, '0.0.0.0');
    const p = s.port;
    const auth = `Authorization: Bearer ${TOKEN}`;
    for (const host of [`192.0.2.7:${p}`, `127.0.0.1:${p}`, `[2001:db8::1]:${p}`, `${hostname()}:${p}`, `localhost:${p}`]) {
      expect((await rawGet(p, '/api/devices', [`Host: ${host}`, auth])).status, host).toBe(200);
    }
    expect((await rawGet(p, '/api/devices', [`Host: evil.example:${p}`, auth])).status).toBe(403);
    expect((await rawGet(p, '/api/devices', [`Host: 192.0.2.7:${p}`])).status).toBe(401);
  });
});
