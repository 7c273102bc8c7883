// Kept captures (server/api/captures.ts over server/store/captures.ts on a database in memory): keep a complete
// capture, list, rename, export as CSV, delete, and every refusal with its status and what to do.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../server/api/app.ts';
import { CAPTURE_CSV_HEADER } from '../../server/export/capture-csv.ts';
import { CAPTURE_NAME_MAX } from '../../server/store/captures.ts';
import { migrate, SCHEMA_VERSION } from '../../server/store/schema.ts';
import { DEVICE, T0, fakes } from './fakes.ts';

let app: FastifyInstance;
let f: ReturnType<typeof fakes>;

beforeEach(async () => {
  f = fakes();
  app = await buildApp({ ...f });
});
afterEach(async () => app.close());

async function capture(pretrigger = 10, decimation = 4): Promise<number> {
  const r = await app.inject({ method: 'POST', url: `/api/devices/${DEVICE}/captures`, payload: { pairs: 100, pretrigger, decimation } });
  return r.json<{ capture_id: number }>().capture_id;
}
const keep = (payload: object) => app.inject({ method: 'POST', url: '/api/captures', payload });

describe('kept captures', () => {
  it('keeps a capture with its samples and scale, lists it, reads it back whole', async () => {
    const id = await capture();
    const r = await keep({ device: DEVICE, capture_id: id, name: 'kettle switching on' });
    expect(r.statusCode).toBe(201);
    const info = r.json();
    expect(info).toMatchObject({
      device: DEVICE, name: 'kettle switching on', captured_at: T0, pairs: 100, sample_rate_hz: 4e6, decimation: 4, rate_hz: 1e6, span_ms: 0.1,
      href: `/api/captures/${info.id}`,
    });
    expect(info.file_stem).toBe(`crabwatt-capture-${DEVICE}-2026-11-01T000000Z-kettle_switching_on`);
    const list = (await app.inject(`/api/captures?device=${DEVICE}`)).json();
    expect(list.captures).toEqual([info]);
    const whole = (await app.inject(info.href)).json();
    const original = f.devices.captures.get(id)!;
    expect(whole).toMatchObject({ ...info, kv: original.kv, ki: original.ki, first_index: original.firstIndex, trigger_index: original.triggerIndex, trigger_offset: 10 });
    // (+ 0: the fake's sine has a −0, which JSON writes as 0)
    expect(whole.v).toEqual(original.v.map((x) => x + 0));
    expect(whole.i).toEqual(original.i.map((x) => x + 0));
    // The scale it was taken with stays, whatever calibration follows.
    await app.inject({ method: 'PUT', url: `/api/devices/${DEVICE}/calibration`, payload: { ...f.devices.cal, kv: 0.06 } });
    expect((await app.inject(info.href)).json().kv).toBe(original.kv);
  });

  it('names one without a name by its time, and newest first', async () => {
    const a = (await keep({ device: DEVICE, capture_id: await capture() })).json();
    f.devices.captures.get(await capture())!.requestedAtMs = T0 + 60_000;
    const b = (await keep({ device: DEVICE, capture_id: 2 })).json();
    expect(a.name).toBe('capture 2026-11-01T00:00:00.000Z');
    expect((await app.inject('/api/captures')).json().captures.map((c: { id: number }) => c.id)).toEqual([b.id, a.id]);
    expect((await app.inject('/api/captures?limit=1')).json().captures).toHaveLength(1);
  });

  it('exports CSV with units: sample index, seconds from the trigger, V, A, W', async () => {
    const info = (await keep({ device: DEVICE, capture_id: await capture(10, 4) })).json();
    const r = await app.inject(`${info.href}/csv`);
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/csv/);
    expect(r.headers['content-disposition']).toBe(`attachment; filename="${info.file_stem}.csv"`);
    const lines = r.body.trimEnd().split('\n');
    expect(lines[0]).toBe(CAPTURE_CSV_HEADER);
    expect(lines).toHaveLength(101);
    const c = f.devices.captures.get(1)!;
    // Pair 10 is the trigger: t 0; pair 0 is 40 samples before it at 4 MS/s.
    expect(lines[11]!.split(',').slice(0, 2)).toEqual([String(c.triggerIndex), '0']);
    const [index, t, v, i, p] = lines[1]!.split(',').map(Number);
    expect(index).toBe(c.firstIndex);
    expect(t).toBe(-1e-5);
    expect(v).toBeCloseTo(c.v[0]! * c.kv, 9);
    expect(i).toBeCloseTo(c.i[0]! * c.ki, 9);
    expect(p).toBeCloseTo(c.v[0]! * c.kv * c.i[0]! * c.ki, 9);
    const row20 = lines[21]!.split(',').map(Number);
    expect(row20[2]).toBeCloseTo(c.v[20]! * c.kv, 9);
  });

  it('renames and deletes; afterwards the capture is gone', async () => {
    const info = (await keep({ device: DEVICE, capture_id: await capture() })).json();
    const r = await app.inject({ method: 'PATCH', url: info.href, payload: { name: '  fridge compressor  ' } });
    expect(r.statusCode).toBe(200);
    expect(r.json().name).toBe('fridge compressor');
    expect((await app.inject(info.href)).json().name).toBe('fridge compressor');
    expect((await app.inject({ method: 'DELETE', url: info.href })).statusCode).toBe(204);
    for (const res of [await app.inject(info.href), await app.inject(`${info.href}/csv`), await app.inject({ method: 'DELETE', url: info.href })]) {
      expect(res.statusCode).toBe(404);
      expect(res.json().message).toMatch(new RegExp(`no kept capture ${info.id}: GET /api/captures lists them`));
    }
    expect((await app.inject({ method: 'PATCH', url: info.href, payload: { name: 'x' } })).statusCode).toBe(404);
    expect((await app.inject('/api/captures')).json().captures).toEqual([]);
  });

  it('refuses bad input with a clear 4xx and keeps nothing', async () => {
    const id = await capture();
    const cases: [object, number, RegExp][] = [
      [{ device: DEVICE, capture_id: id, name: 'x'.repeat(CAPTURE_NAME_MAX + 1) }, 400, /name.*80/],
      [{ device: DEVICE, capture_id: id, name: '   ' }, 400, /only spaces/],
      [{ device: DEVICE, capture_id: id, name: 'a\nb' }, 400, /name/],
      [{ device: DEVICE, capture_id: id, extra: 1 }, 400, /unexpected property/],
      [{ device: 'nope', capture_id: id }, 404, /unknown device 'nope'/],
      [{ device: DEVICE, capture_id: 77 }, 404, /no capture 77 .*POST \/api\/devices\/.*\/captures first/],
    ];
    for (const [payload, status, message] of cases) {
      const r = await keep(payload);
      expect([r.statusCode, r.json().message]).toEqual([status, expect.stringMatching(message)]);
    }
    expect((await app.inject({ method: 'PATCH', url: '/api/captures/1', payload: { name: '' } })).statusCode).toBe(400);
    expect((await app.inject('/api/captures/abc')).statusCode).toBe(400);
    expect((await app.inject('/api/captures/0')).statusCode).toBe(400);
    expect((await app.inject('/api/captures')).json().captures).toEqual([]);
  });

  it('refuses a capture still pending (409) or failed (422), saying what to do', async () => {
    const id = await capture();
    const c = f.devices.captures.get(id)!;
    c.state = 'pending';
    let r = await keep({ device: DEVICE, capture_id: id });
    expect(r.statusCode).toBe(409);
    expect(r.json().message).toMatch(/still pending: keep it once .* says complete/);
    c.state = 'failed';
    c.detail = 'chunk 3 never arrived';
    r = await keep({ device: DEVICE, capture_id: id });
    expect(r.statusCode).toBe(422);
    expect(r.json().message).toMatch(/failed \(chunk 3 never arrived\).*capture again/);
    expect((await app.inject('/api/captures')).json().captures).toEqual([]);
  });

  it('answers 503 with the reason when the database does not take the write, and changes nothing', async () => {
    const info = (await keep({ device: DEVICE, capture_id: await capture() })).json();
    f.store.db.exec(`CREATE TRIGGER refuse BEFORE UPDATE ON captures BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;`);
    const r = await app.inject({ method: 'PATCH', url: info.href, payload: { name: 'new' } });
    expect(r.statusCode).toBe(503);
    expect(r.json().message).toMatch(/disk is full.*free disk space and retry; nothing was changed/);
    expect((await app.inject(info.href)).json().name).toBe(info.name);
  });

  it('keeps its table and rows when the last migration runs again on a database that has them', async () => {
    await keep({ device: DEVICE, capture_id: await capture() });
    f.store.db.pragma(`user_version = ${SCHEMA_VERSION - 1}`);
    expect(() => migrate(f.store.db)).not.toThrow();
    expect((await app.inject('/api/captures')).json().captures).toHaveLength(1);
  });
});
