import http from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import WebSocket from 'ws';
import { buildApp } from '../../server/api/app.ts';
import { DeviceCommandError } from '../../server/api/deps.ts';
import { DEVICE, T0, fakes, liveWindow } from './fakes.ts';

let f: ReturnType<typeof fakes>;
let app: FastifyInstance;

beforeEach(async () => {
  f = fakes();
  app = await buildApp({ ...f });
});
afterEach(async () => {
  await app.close();
});

const get = (url: string) => app.inject({ method: 'GET', url });
const hist = (q: Record<string, string | number>) =>
  get(`/api/history?${new URLSearchParams(Object.entries(q).map(([k, v]) => [k, String(v)]))}`);

describe('devices', () => {
  it('lists devices with link state and counters', async () => {
    const r = await get('/api/devices');
    expect(r.statusCode).toBe(200);
    const d = r.json().devices[0];
    expect(d).toMatchObject({ id: DEVICE, kind: 'simulated', state: 'connected', sample_rate_hz: 4e6 });
    expect(d.counters).toEqual({ bytes: 0, rejected: 0, dropped: 0, frames: 10, crc_errors: 0, seq_gaps: 0, resets: 0, reconnects: 0, frames_per_s: 11, windows: 9, duplicates: 0 });
    expect(d.warning).toBeNull();
    expect(d.health).toEqual({ state: 'ok', detail: '' });
    expect(d.device_health).toEqual({
      frames_dropped: 1, fifo_overflows: 2, samples_dropped: 3, adc_errors: 4, watchdog_resets: 5, link_stalls: 6, uart_rx_overruns: 7,
    });
  });

  it('404s an unknown device with a message', async () => {
    const r = await get('/api/devices/feedfeedfeedfeed');
    expect(r.statusCode).toBe(404);
    expect(r.json().message).toMatch(/unknown device 'feedfeedfeedfeed'/);
  });

  it('400s a device id with path characters', async () => {
    const r = await get('/api/devices/..%2F..%2Fetc');
    expect(r.statusCode).toBe(400);
  });

  it('reports energy today and total exactly', async () => {
    const r = await get(`/api/devices/${DEVICE}/energy?tz=Europe/Berlin`);
    expect(r.statusCode).toBe(200);
    const e = r.json();
    expect(e.today_nwh).toBe('1500000000');
    expect(e.today_wh).toBeCloseTo(1.5, 12);
    expect(e.total_nwh).toBe('123456789012345');
    expect(e.total_wh).toBeCloseTo(123456.789012345, 6);
    expect(e.day_start).toMatch(/T00:00:00\.000\+0[12]:00$/);
  });

  it('400s an unknown time zone', async () => {
    const r = await get(`/api/devices/${DEVICE}/energy?tz=Mars/Olympus`);
    expect(r.statusCode).toBe(400);
    expect(r.json().message).toMatch(/unknown time zone 'Mars\/Olympus'/);
  });
});

describe('history', () => {
  const ok = { device: DEVICE, from: T0, to: T0 + 3600_000, points: 100, fields: 'p,vrms' };

  it('answers folded buckets with gaps as null', async () => {
    const r = await hist(ok);
    expect(r.statusCode).toBe(200);
    const h = r.json();
    expect(h).toMatchObject({ device: DEVICE, from: T0, to: T0 + 3600_000, level: '1s', bucket_ms: 36_000 });
    expect(h.t).toHaveLength(100);
    expect(Object.keys(h.series).sort()).toEqual(['p', 'vrms']);
    expect(h.series.p.mean[50]).toBeNull();
    expect(h.series.p.max[0]).toBe(101);
    expect(f.store.historyCalls[0]).toEqual({ device: DEVICE, fromMs: T0, toMs: T0 + 3600_000, points: 100, fields: ['p', 'vrms'] });
  });

  it('accepts ISO-8601 times with offsets', async () => {
    const r = await hist({ ...ok, from: '2026-11-01T01:00:00+01:00', to: '2026-11-01T02:00:00+01:00' });
    expect(r.statusCode).toBe(200);
    expect(r.json().from).toBe(T0);
  });

  it.each([
    ['from after to', { from: T0 + 10, to: T0 }, /'from' must be before 'to'/],
    ['from equal to', { from: T0, to: T0 }, /'from' must be before 'to'/],
    ['points zero', { points: 0 }, /points/],
    ['absurd points', { points: 10_000_000 }, /points/],
    ['non-numeric points', { points: 'lots' }, /points/],
    ['fractional points', { points: 1.5 }, /points/],
    ['non-numeric from', { from: 'yesterday' }, /'from' must be Unix milliseconds or ISO-8601/],
    ['time in seconds by mistake', { from: 1_700_000_000 }, /outside 2000-01-01/],
    ['unknown field', { fields: 'p,watts' }, /unknown field 'watts'/],
    ['empty field', { fields: 'p,' }, /unknown field ''/],
    ['bad device id', { device: 'a b' }, /device/],
  ])('400s %s', async (_name, change, message) => {
    const r = await hist({ ...ok, ...change });
    expect(r.statusCode).toBe(400);
    expect(r.json().message).toMatch(message);
  });

  it('400s a missing parameter', async () => {
    const r = await get(`/api/history?device=${DEVICE}&from=${T0}`);
    expect(r.statusCode).toBe(400);
    expect(r.json().message).toMatch(/to/);
  });

  it('404s an unknown device', async () => {
    const r = await hist({ ...ok, device: 'feedfeedfeedfeed' });
    expect(r.statusCode).toBe(404);
  });

  it('maps the store’s own argument errors to 400 and its unknown device to 404', async () => {
    f.store.history = () => {
      const e = new Error('history range too large');
      e.name = 'QueryError';
      throw e;
    };
    expect((await hist(ok)).statusCode).toBe(400);
    f.store.history = () => {
      const e = new Error('no such device');
      e.name = 'UnknownDeviceError';
      throw e;
    };
    expect((await hist(ok)).statusCode).toBe(404);
  });

  it('hides internal errors behind a 500 without details, and writes them where the reply says: the server log', async () => {
    const logged: string[] = [];
    const logging = await buildApp({ ...f, logInternalError: (line) => logged.push(line) });
    f.store.history = () => {
      throw new TypeError('secret internals');
    };
    const r = await logging.inject({ method: 'GET', url: `/api/history?${new URLSearchParams(Object.entries(ok).map(([k, v]) => [k, String(v)]))}` });
    await logging.close();
    expect(r.statusCode).toBe(500);
    expect(r.body).not.toMatch(/secret/);
    expect(r.json().message).toMatch(/server log/);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatch(/^GET \/api\/history: TypeError: secret internals\n    at /);
  });
});

describe('export', () => {
  const q = (o: Record<string, string | number> = {}) =>
    new URLSearchParams(
      Object.entries({ device: DEVICE, from: T0, to: T0 + 60_000, interval: '1s', tz: 'Europe/Berlin', ...o }).map(([k, v]) => [k, String(v)]),
    ).toString();

  it('streams the CSV with a header and a file name', async () => {
    f.store.exportRows = 5000;
    const r = await get(`/api/export.csv?${q()}`);
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/csv/);
    expect(r.headers['content-disposition']).toMatch(/attachment; filename="crabwatt-00c0ffee00000001-.*-1s\.csv"/);
    const lines = r.body.trimEnd().split('\n');
    expect(lines[0]).toBe('timestamp,vrms,irms,p');
    expect(lines).toHaveLength(5001);
    expect(f.store.exportCalls[0]).toEqual({ device: DEVICE, fromMs: T0, toMs: T0 + 60_000, interval: '1s', tz: 'Europe/Berlin' });
  });

  it('answers HEAD with the headers only, without running the export', async () => {
    let pulled = 0;
    let released = false;
    f.store.exportCsv = function* () {
      try {
        for (;;) {
          pulled++;
          yield Buffer.from('timestamp\n');
        }
      } finally {
        released = true;
      }
    };
    const r = await app.inject({ method: 'HEAD', url: `/api/export.csv?${q()}` });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/csv/);
    expect(r.body).toBe('');
    expect(pulled).toBe(1); // the first piece: a bad query is still a 4xx for HEAD
    expect(released).toBe(true);
  });

  it('releases the store’s iterator when the client goes away mid-download', async () => {
    let released = false;
    let produced = 0;
    f.store.exportCsv = function* () {
      try {
        for (;;) {
          produced++;
          yield Buffer.from(`${'x'.repeat(70_000)}\n`);
        }
      } finally {
        released = true;
      }
    };
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve, reject) => {
      const req = http.get(`${url}/api/export.csv?${q()}`, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', (e) => (e.message.includes('socket hang up') ? undefined : reject(e)));
    });
    await expect.poll(() => released, { timeout: 5000 }).toBe(true);
    expect(produced).toBeLessThan(1000); // pulled as the socket drained, not run to exhaustion
  });

  it('reads times without an offset as wall-clock times in tz', async () => {
    const r = await get(`/api/export.csv?${q({ from: '2026-07-01T00:00', to: '2026-07-02T00:00' })}`);
    expect(r.statusCode).toBe(200);
    expect(f.store.exportCalls[0]!.fromMs).toBe(Date.UTC(2026, 5, 30, 22));
  });

  it('estimates rows for progress', async () => {
    const r = await get(`/api/export/estimate?${q()}`);
    expect(r.json()).toEqual({ rows: 10 });
  });

  it.each([
    ['bad zone', { tz: 'Europe/Atlantis' }, 400],
    ['bad interval', { interval: '7m' }, 400],
    ['from after to', { from: T0 + 1, to: T0 }, 400],
    ['non-numeric to', { to: 'NaN' }, 400],
    ['unknown device', { device: 'feedfeedfeedfeed' }, 404],
  ])('refuses %s before streaming', async (_n, change, status) => {
    const r = await get(`/api/export.csv?${q(change)}`);
    expect(r.statusCode).toBe(status);
    expect(r.headers['content-type']).toMatch(/json/);
    expect(r.json().message).toBeTruthy();
  });
});

describe('calibration', () => {
  const cal = { v_offset: -12, i_offset: 4, v_gain: 16500, i_gain: 16000, phase: -65536 * 3, kv: 0.0488, ki: 0.00391 };
  const put = (body: unknown, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
    app.inject({ method: 'PUT', url: `/api/devices/${DEVICE}/calibration`, headers, payload: typeof body === 'string' ? body : JSON.stringify(body) });

  it('reads the stored calibration', async () => {
    const r = await get(`/api/devices/${DEVICE}/calibration`);
    expect(r.statusCode).toBe(200);
    expect(r.json().calibration).toMatchObject({ v_gain: 16384, kv: 0.05 });
  });

  it('writes and pushes to the device', async () => {
    const r = await put(cal);
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({ calibration: cal, config_seq: 1 });
    expect(f.devices.pushed).toEqual([cal]);
    // GET says the same config_seq the PUT returned.
    expect((await get(`/api/devices/${DEVICE}/calibration`)).json()).toEqual({ calibration: cal, config_seq: 1 });
  });

  it.each([
    ['kv·ki above the counter limit (the issue: 1e6 each)', { kv: 1e6, ki: 1e6 }, /kv·ki = 1000000000000 is above 0\.00097991/],
    ['kv·ki below 2^-994', { kv: 2 ** -497, ki: 2 ** -498 }, /below 2\^-994/],
  ])('422s %s with the allowed range and pushes nothing', async (_n, change, message) => {
    const r = await put({ ...cal, ...change });
    expect(r.statusCode).toBe(422);
    expect(r.json().message).toMatch(message);
    expect(f.devices.pushed).toHaveLength(0);
  });

  it.each([
    ['gain beyond u16', { v_gain: 70000 }],
    ['offset beyond i16', { i_offset: -40000 }],
    ['phase beyond the delay line', { phase: 1023 * 65536 }],
    ['zero scale', { kv: 0 }],
    ['a scale above 2^951', { kv: 2 ** 952 }],
    ['a subnormal scale', { ki: 5e-324 }],
    ['non-numeric', { v_gain: 'big' }],
    ['unknown property', { v_gian: 1 }],
    // A body is JSON: a value of another JSON type is refused, not converted (the fuzzer's phase: null was stored as 0).
    ['null phase', { phase: null }],
    ['a number as a string', { kv: '0.05' }],
    ['a boolean gain', { v_gain: true }],
    ['a gain in an array', { i_gain: [16384] }],
  ])('400s %s and pushes nothing', async (_n, change) => {
    const r = await put({ ...cal, ...change });
    expect(r.statusCode).toBe(400);
    expect(r.json().message).toBeTruthy();
    expect(f.devices.pushed).toHaveLength(0);
  });

  it('400s malformed JSON', async () => {
    const r = await put('{"v_gain": ');
    expect(r.statusCode).toBe(400);
  });

  it('415s a body that is not JSON', async () => {
    const r = await put('v_gain=1', { 'content-type': 'application/x-www-form-urlencoded' });
    expect(r.statusCode).toBe(415);
  });

  it('413s an oversized body', async () => {
    const r = await put({ ...cal, pad: 'x'.repeat(100_000) });
    expect(r.statusCode).toBe(413);
    expect(r.json().message).toMatch(/too large/i);
  });

  it('passes on a device refusal as its status', async () => {
    f.devices.failNext = new DeviceCommandError('device busy: retry', 409);
    const r = await put(cal);
    expect(r.statusCode).toBe(409);
    expect(r.json().message).toBe('device busy: retry');
  });
});

describe('captures', () => {
  it('requests one and fetches it', async () => {
    const r = await app.inject({ method: 'POST', url: `/api/devices/${DEVICE}/captures`, payload: { pairs: 400, trigger: 'v_rising', pretrigger: 40 } });
    expect(r.statusCode).toBe(202);
    const { capture_id, href } = r.json();
    const c = await get(href);
    expect(c.statusCode).toBe(200);
    expect(c.json()).toMatchObject({ id: capture_id, state: 'complete', trigger_offset: 40, sample_rate_hz: 4e6 });
    expect(c.json().v).toHaveLength(400);
  });

  it.each([
    ['null pairs', { pairs: null }],
    ['pairs as a string', { pairs: '400' }],
    ['a boolean level', { level: false }],
  ])('400s %s and asks the device for nothing', async (_n, body) => {
    const r = await app.inject({ method: 'POST', url: `/api/devices/${DEVICE}/captures`, payload: body });
    expect(r.statusCode).toBe(400);
    expect(r.json().message).toMatch(/^body\/(pairs|level): expected /);
    expect(f.devices.captureRequests).toHaveLength(0);
  });

  it('uses defaults for an empty body: every sample, no hysteresis', async () => {
    const r = await app.inject({ method: 'POST', url: `/api/devices/${DEVICE}/captures`, payload: {} });
    expect(r.statusCode).toBe(202);
    expect(f.devices.captureRequests.at(-1)).toEqual({ pairs: 4096, trigger: 'v_rising', level: 0, pretrigger: 0, hysteresis: 0 });
  });

  it('passes the span on as decimation, duration or cycles, and the reply gives the pair spacing', async () => {
    const post = (payload: object) => app.inject({ method: 'POST', url: `/api/devices/${DEVICE}/captures`, payload });
    expect((await post({ decimation: 64, hysteresis: 200 })).statusCode).toBe(202);
    expect(f.devices.captureRequests.at(-1)).toMatchObject({ decimation: 64, hysteresis: 200 });
    expect((await post({ duration_ms: 80 })).statusCode).toBe(202);
    expect(f.devices.captureRequests.at(-1)).toMatchObject({ durationMs: 80 });
    expect(f.devices.captureRequests.at(-1)).not.toHaveProperty('decimation');
    const r = await post({ cycles: 4, pairs: 1000, pretrigger: 10, decimation: undefined });
    expect(r.statusCode).toBe(202);
    expect(f.devices.captureRequests.at(-1)).toMatchObject({ cycles: 4, pairs: 1000 });
    const c = await get(r.json().href);
    expect(c.json()).toMatchObject({ decimation: 1, first_index: 1_000_000, trigger_index: 1_000_010, trigger_offset: 10 });
  });

  it.each([
    ['pretrigger not below pairs', { pairs: 10, pretrigger: 10 }],
    ['zero pairs', { pairs: 0 }],
    ['unknown trigger', { trigger: 'sideways' }],
    ['decimation 0', { decimation: 0 }],
    ['decimation beyond u16', { decimation: 65536 }],
    ['a fractional decimation', { decimation: 2.5 }],
    ['a zero duration', { duration_ms: 0 }],
    ['a duration beyond a minute', { duration_ms: 60_001 }],
    ['negative cycles', { cycles: -1 }],
    ['hysteresis beyond 32767', { hysteresis: 32768 }],
    ['two spans at once', { decimation: 4, duration_ms: 80 }],
    ['all three spans', { decimation: 4, duration_ms: 80, cycles: 4 }],
  ])('400s %s', async (_n, body) => {
    const r = await app.inject({ method: 'POST', url: `/api/devices/${DEVICE}/captures`, payload: body });
    expect(r.statusCode).toBe(400);
  });

  it('404s a capture that does not exist, and a non-numeric id is a 400', async () => {
    expect((await get(`/api/devices/${DEVICE}/captures/77`)).statusCode).toBe(404);
    expect((await get(`/api/devices/${DEVICE}/captures/abc`)).statusCode).toBe(400);
  });

  it('504s a device that does not answer', async () => {
    f.devices.failNext = new DeviceCommandError('no ack within 2000 ms', 504);
    const r = await app.inject({ method: 'POST', url: `/api/devices/${DEVICE}/captures`, payload: {} });
    expect(r.statusCode).toBe(504);
  });
});

describe('docs and static files', () => {
  it('publishes OpenAPI with every API route', async () => {
    const r = await get('/docs/json');
    expect(r.statusCode).toBe(200);
    const paths = Object.keys(r.json().paths);
    for (const p of ['/api/devices', '/api/history', '/api/export.csv', '/api/devices/{id}/calibration', '/api/devices/{id}/captures']) {
      expect(paths).toContain(p);
    }
    expect(paths).not.toContain('/');
    expect(r.json().paths['/api/history'].get.parameters.map((p: { name: string }) => p.name).sort()).toEqual(['device', 'fields', 'from', 'points', 'to']);
  });

  it('serves the dashboard and its bundle', async () => {
    const html = await get('/');
    expect(html.statusCode).toBe(200);
    expect(html.body).toContain('/assets/app.js');
    const js = await get('/assets/app.js');
    expect(js.statusCode).toBe(200);
    expect(js.headers['content-type']).toMatch(/javascript/);
    const css = await get('/assets/app-style.css');
    expect(css.body).toContain('.u-legend'); // uPlot's own CSS made it into the bundle
    const again = await app.inject({ method: 'GET', url: '/assets/app.js', headers: { 'if-none-match': js.headers.etag as string } });
    expect(again.statusCode).toBe(304);
  });

  it.each(['/assets/../../package.json', '/assets/..%2f..%2fpackage.json', '/assets/%2e%2e/%2e%2e/package.json', '/../package.json', '/assets//etc/passwd'])(
    'refuses path traversal: %s',
    async (url) => {
      const r = await get(url);
      expect(r.statusCode).toBeGreaterThanOrEqual(400);
      expect(r.statusCode).toBeLessThan(500);
      expect(r.body).not.toContain('"devDependencies"');
      expect(r.body).not.toContain('root:');
    },
  );

  it('404s unknown API routes with JSON', async () => {
    const r = await get('/api/nothing');
    expect(r.statusCode).toBe(404);
    expect(r.json().message).toMatch(/no route/);
  });
});

describe('token', () => {
  const token = 'correct-horse-battery-staple';
  let secured: FastifyInstance;
  beforeEach(async () => {
    secured = await buildApp({ ...fakes(), token });
  });
  afterEach(async () => secured.close());

  it('refuses API requests without or with a wrong token', async () => {
    expect((await secured.inject({ url: '/api/devices' })).statusCode).toBe(401);
    expect((await secured.inject({ url: '/api/devices', headers: { authorization: 'Bearer nope' } })).statusCode).toBe(401);
    expect((await secured.inject({ url: '/api/devices?token=nope' })).statusCode).toBe(401);
    expect((await secured.inject({ url: '/api/nothing' })).statusCode).toBe(401);
    // The export writes its response itself (hijacked): the token is checked before it starts all the same.
    const exportUrl = `/api/export.csv?device=${DEVICE}&from=${T0}&to=${T0 + 60_000}&interval=1s&tz=UTC`;
    const refused = await secured.inject({ url: exportUrl });
    expect(refused.statusCode).toBe(401);
    expect(refused.body).not.toMatch(/timestamp/);
    const allowed = await secured.inject({ url: exportUrl, headers: { authorization: `Bearer ${token}` } });
    expect(allowed.statusCode).toBe(200);
    expect(allowed.body).toMatch(/^timestamp,/);
  });

  it('accepts the token as a bearer header or a query parameter', async () => {
    expect((await secured.inject({ url: '/api/devices', headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(200);
    expect((await secured.inject({ url: `/api/devices?token=${token}` })).statusCode).toBe(200);
  });

  it('checks the WebSocket upgrade too', async () => {
    await secured.ready();
    await expect(secured.injectWS('/api/live')).rejects.toThrow(/401/);
    const ws = await secured.injectWS(`/api/live?token=${token}`);
    ws.terminate();
  });

  it('closes the socket of a refused upgrade on a real port, so the server can still shut down', async () => {
    const url = await secured.listen({ host: '127.0.0.1', port: 0 });
    const refused = new WebSocket(`${url.replace('http', 'ws')}/api/live`);
    const err = await new Promise<Error>((resolve) => refused.on('error', resolve));
    expect(err.message).toMatch(/401/);
    await secured.close(); // hangs forever if the upgrade socket was left open
    secured = await buildApp({ ...fakes(), token }); // for afterEach
  });

  it('leaves the dashboard shell public (it carries no data)', async () => {
    expect((await secured.inject({ url: '/' })).statusCode).toBe(200);
  });
});

describe('live WebSocket', () => {
  function collect(ws: WebSocket): unknown[] {
    const got: unknown[] = [];
    ws.on('message', (m) => got.push(JSON.parse(String(m))));
    return got;
  }
  const until = async (cond: () => boolean) => {
    for (let k = 0; k < 200 && !cond(); k++) await new Promise((r) => setTimeout(r, 5));
    expect(cond()).toBe(true);
  };

  it('sends the device list, then windows and link events', async () => {
    await app.ready();
    const ws = await app.injectWS('/api/live');
    const got = collect(ws);
    await until(() => got.length >= 1);
    expect(got[0]).toMatchObject({ type: 'devices', devices: [{ id: DEVICE }] });
    f.live.emit('window', liveWindow(T0, 1234));
    f.live.emit('link', { device: DEVICE, state: 'reconnecting', detail: 'unplugged' });
    await until(() => got.length >= 3);
    expect(got[1]).toMatchObject({ type: 'window', device: DEVICE, p: 1234, energy_nwh: '55555', t_ms: T0, v_dc: 0.01, i_dc: -0.002 });
    expect(got[2]).toEqual({ type: 'link', device: DEVICE, state: 'reconnecting', detail: 'unplugged' });
    ws.terminate();
  });

  it('404s a stream for an unknown device', async () => {
    await app.ready();
    await expect(app.injectWS('/api/live?device=feedfeedfeedfeed')).rejects.toThrow(/404/);
  });

  it('stops listening to ingest when closed', async () => {
    await app.ready();
    // The live hub and /metrics' last readings.
    expect(f.live.listenerCount('window')).toBe(2);
    await app.close();
    expect(f.live.listenerCount('window')).toBe(0);
    app = await buildApp({ ...fakes() }); // for afterEach
  });
});
