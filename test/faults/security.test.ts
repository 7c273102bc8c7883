// Issue 10, security (items 1-3) against a real `crabwatt serve`: the token table in every spelling over raw
// sockets (no client library normalising the path first), Host and Origin, and the token from a file or the
// environment rather than the command line.

import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  absoluteForms, attempts, leaksData, QUERIES, rawGet, rawRequest, routes, SPELLINGS, UPGRADE, type Attempt, type RawResponse,
} from '../api/spellings.ts';
import { getJson, runCli, scratchDir, startServe, until, type ServeProcess } from './serve-process.ts';

const TOKEN = 'fault-suite-token-0123456789abcdef';

interface DeviceList {
  devices: Array<{ id: string }>;
}

/** The port of `url` and the sim's device id once it is listed. */
async function ready(serve: ServeProcess, headers: Record<string, string> = {}): Promise<{ port: number; device: string }> {
  const port = Number(new URL(serve.url).port);
  const device = await until(async () => (await getJson<DeviceList>(`http://127.0.0.1:${port}/api/devices`, { headers })).devices[0]?.id);
  return { port, device };
}

/** Runs `task` over `items`, `width` at a time (a few thousand connections, without opening them all at once). */
async function inBatches<T, R>(items: readonly T[], width: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let k = 0; k < items.length; k += width) out.push(...(await Promise.all(items.slice(k, k + width).map(task))));
  return out;
}

describe('beyond loopback, with the token from a file', () => {
  const scratch = scratchDir();
  const tokenFile = join(scratch.dir, 'token');
  let serve: ServeProcess;
  let port: number;
  let device: string;
  let calibration: object;
  const host = () => `Host: 127.0.0.1:${port}`;
  const auth = `Authorization: Bearer ${TOKEN}`;

  beforeAll(async () => {
    writeFileSync(tokenFile, `${TOKEN}\n`);
    chmodSync(tokenFile, 0o600);
    serve = await startServe({ args: ['--device', 'sim', '--db', join(scratch.dir, 'db.sqlite'), '--listen', '0.0.0.0:0', '--token-file', tokenFile] });
    ({ port, device } = await ready(serve, { authorization: `Bearer ${TOKEN}` }));
    calibration = (await getJson<{ calibration: object }>(`http://127.0.0.1:${port}/api/devices/${device}/calibration`, { headers: { authorization: `Bearer ${TOKEN}` } })).calibration;
  });
  afterAll(async () => {
    await serve?.stop();
    scratch.remove();
  });

  it.skipIf(!existsSync('/proc/self/cmdline'))('keeps the token out of the command line every user can read (/proc, as ps reads it)', () => {
    const cmdline = readFileSync(`/proc/${serve.pid}/cmdline`, 'utf8');
    expect(cmdline).toContain('--token-file');
    expect(cmdline).not.toContain(TOKEN);
  });

  it('answers every route with the token (the table below is not vacuous)', async () => {
    for (const r of routes(device, Date.now(), calibration)) {
      if (r.method === 'HEAD' || r.method === 'OPTIONS' || r.target === '/api/live') continue;
      const res = await rawRequest(port, r.method, r.target, [host(), auth], r.body);
      expect([200, 202], `${r.label}: ${res.status} ${res.body.slice(0, 200)}`).toContain(res.status);
    }
    const ws = await rawRequest(port, 'GET', `/api/live?token=${TOKEN}`, [host(), ...UPGRADE]);
    expect(ws.status).toBe(101);
  });

  it('refuses every spelling of every route without the token, and nothing changes', async () => {
    // Two of the query additions: the whole product runs in test/api/guard.test.ts, where a request costs less.
    // Captures are numbered in order: one armed by a request that slipped through would leave a hole.
    // (409 while the previous capture is still pending: ask again.)
    const arm = () =>
      until(async () => {
        const r = await rawRequest(port, 'POST', `/api/devices/${device}/captures`, [host(), auth], { pairs: 64 });
        if (r.status === 409) return undefined;
        expect(r.status, r.body).toBe(202);
        return JSON.parse(r.body).capture_id as number;
      });
    const firstCapture = await arm();
    const table = attempts(device, Date.now(), calibration, QUERIES.slice(0, 2));
    const answers = await inBatches(table, 16, (a: Attempt) => rawRequest(port, a.method, a.target, [host()], a.body));
    // 400: the HTTP parser refused the request line before any route ran (a '#' or '\' in a path).
    const wrong = table
      .map((a, k): [Attempt, RawResponse] => [a, answers[k]!])
      .filter(([, r]) => ![400, 401].includes(r.status) || leaksData(r.body, device))
      .map(([a, r]) => `${a.label} [${a.target}] → ${r.status} ${r.body.slice(0, 80)}`);
    expect(wrong).toEqual([]);
    expect(answers.filter((r) => r.status === 401).length).toBeGreaterThan(table.length * 0.9);
    // No write got through: the calibration is the same, and no capture was armed in between.
    const after = await getJson<{ calibration: object }>(`http://127.0.0.1:${port}/api/devices/${device}/calibration`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(after.calibration).toEqual(calibration);
    expect(await arm()).toBe(firstCapture + 1);
  }, 300_000); // ~1 600 connections to a process that is ingesting at the same time, on a machine that may be busy

  it('refuses the WebSocket upgrade in every spelling', async () => {
    for (const [name, spell] of SPELLINGS) {
      const res = await rawRequest(port, 'GET', spell('/api/live'), [host(), ...UPGRADE]);
      expect([400, 401], `${name}: ${res.status}`).toContain(res.status);
    }
  });

  it('refuses absolute-form request lines', async () => {
    for (const target of absoluteForms(`127.0.0.1:${port}`, device)) {
      const res = await rawGet(port, target, [host()]);
      expect([401, 403], `${target}: ${res.status} ${res.body}`).toContain(res.status);
      expect(leaksData(res.body, device), target).toBe(false);
    }
  });

  it('answers to IP literals on the wildcard address, never to a rebinding name', async () => {
    expect((await rawGet(port, '/api/devices', [`Host: 192.0.2.7:${port}`, auth])).status).toBe(200);
    const res = await rawGet(port, '/api/devices', [`Host: rebind.evil.example:${port}`, auth]);
    expect(res.status).toBe(403);
    expect(JSON.parse(res.body).message).toMatch(/--allow-host rebind\.evil\.example/);
  });
});

describe('on loopback: Host and Origin, the token from the environment', () => {
  const scratch = scratchDir();
  let serve: ServeProcess;
  let port: number;
  let device: string;

  beforeAll(async () => {
    serve = await startServe({
      args: ['--device', 'sim', '--db', join(scratch.dir, 'db.sqlite'), '--allow-host', 'meter.example'],
      env: { ...process.env, CRABWATT_TOKEN: TOKEN },
    });
    ({ port, device } = await ready(serve, { authorization: `Bearer ${TOKEN}` }));
  });
  afterAll(async () => {
    await serve?.stop();
    scratch.remove();
  });
  const auth = `Authorization: Bearer ${TOKEN}`;

  it('takes CRABWATT_TOKEN: refused without it, served with it', async () => {
    expect((await rawGet(port, '/api/devices', [`Host: 127.0.0.1:${port}`])).status).toBe(401);
    expect((await rawGet(port, '/api/devices', [`Host: localhost:${port}`, auth])).status).toBe(200);
  });

  it('refuses a rebinding name (even with the token a page could not have) and the dashboard shell under it', async () => {
    for (const target of ['/api/devices', '/']) {
      const res = await rawGet(port, target, [`Host: evil.example:${port}`, auth]);
      expect(res.status, target).toBe(403);
      expect(JSON.parse(res.body)).toMatchObject({ statusCode: 403, error: 'Forbidden' });
    }
    expect((await rawGet(port, '/api/devices', ['Host: meter.example', auth])).status).toBe(200);
  });

  it('refuses a cross-origin WebSocket and write; a client without Origin is served', async () => {
    const live = (origin: string[]) => rawRequest(port, 'GET', `/api/live?token=${TOKEN}`, [`Host: 127.0.0.1:${port}`, ...origin, ...UPGRADE]);
    expect((await live(['Origin: http://evil.example'])).status).toBe(403);
    expect((await live(['Origin: null'])).status).toBe(403);
    expect((await live([`Origin: http://localhost:${port}`])).status).toBe(101);
    expect((await live([])).status).toBe(101);

    const url = `/api/devices/${device}/calibration`;
    const before = JSON.parse((await rawGet(port, url, [`Host: 127.0.0.1:${port}`, auth])).body).calibration;
    const put = await rawRequest(port, 'PUT', url, [`Host: 127.0.0.1:${port}`, 'Origin: http://evil.example', auth], before);
    expect(put.status).toBe(403);
    const capture = await rawRequest(port, 'POST', `/api/devices/${device}/captures`, [`Host: 127.0.0.1:${port}`, 'Origin: http://evil.example', auth], { pairs: 64 });
    expect(capture.status).toBe(403);
    // The same write from a client that sends no Origin (curl, a script) goes through.
    expect((await rawRequest(port, 'PUT', url, [`Host: 127.0.0.1:${port}`, auth], before)).status).toBe(200);
  });
});

describe('the token options of the command line', () => {
  const scratch = scratchDir();
  afterAll(() => scratch.remove());

  it('refuses a token file every user can read, before opening anything', async () => {
    const file = join(scratch.dir, 'token');
    writeFileSync(file, TOKEN);
    chmodSync(file, 0o644);
    const db = join(scratch.dir, 'db.sqlite');
    const r = await runCli(['serve', '--device', 'sim', '--db', db, '--token-file', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/can be read by every user.*chmod 600/);
    expect(existsSync(db)).toBe(false);
  });

  it('warns when the token is given on the command line', async () => {
    const ok = await startServe({ args: ['--device', 'sim', '--db', join(scratch.dir, 'warn.sqlite'), '--token', TOKEN] });
    try {
      expect(ok.stderr()).toMatch(/--token is visible to every user.*--token-file FILE or CRABWATT_TOKEN/);
    } finally {
      await ok.stop();
    }
  });

  it('--help recommends the file and the environment over --token', async () => {
    const r = await runCli(['serve', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/--token-file FILE/);
    expect(r.stdout).toMatch(/CRABWATT_TOKEN/);
    expect(r.stdout).toMatch(/--token T .*\(ps\): prefer the two above/);
    expect(r.stdout).toMatch(/--allow-host NAME/);
  });
});
