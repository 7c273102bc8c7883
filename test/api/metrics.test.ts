// GET /metrics on the app with fake devices: the exposition that promtool accepts, the energy counter exactly
// the ledger's nWh in Wh, readings only while connected, and the token asked for like on every API route.

import { spawnSync } from 'node:child_process';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../server/api/app.ts';
import { DEVICE, fakes, liveWindow } from './fakes.ts';

const TOKEN = 'fedcba9876543210fedcba9876543210';
let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

/** The sample of `name` for the fake device, as its text in the exposition; undefined when absent. */
function sample(text: string, name: string, labels = `device="${DEVICE}"`): string | undefined {
  return new RegExp(`^${name}\\{${labels}\\} (\\S+)$`, 'm').exec(text)?.[1];
}

describe('GET /metrics', () => {
  it('is a text exposition promtool accepts, with HELP and TYPE, the ledger exact in Wh and the last reading', async () => {
    const f = fakes();
    f.devices.info = {
      ...f.devices.info,
      pq: { waveformFrames: 2441, waveformLostSamples: 64, waveformGaps: 2, pqWindows: 48, pqGapWindows: 3, pqEvents: 1, declaredV: 230, nominalHz: 50, error: null },
    };
    app = await buildApp({ ...f, databaseBytes: () => 12_345 });
    f.live.emit('window', liveWindow(Date.now(), 2300));
    const r = await app.inject({ method: 'GET', url: '/metrics' });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const check = spawnSync('promtool', ['check', 'metrics'], { input: r.body, encoding: 'utf8' });
    expect(check.error).toBeUndefined();
    expect({ status: check.status, out: check.stdout + check.stderr }).toEqual({ status: 0, out: '' });
    expect(r.body).toMatch(/^# TYPE crabwatt_energy_wh_total counter$/m);
    expect(r.body).toMatch(/^# HELP crabwatt_energy_wh_total .+$/m);
    // FakeStore's ledger: 123 456 789 012 345 nWh.
    expect(Number(sample(r.body, 'crabwatt_energy_wh_total'))).toBe(123_456_789_012_345 / 1e9);
    expect(sample(r.body, 'crabwatt_frames_total')).toBe('10');
    expect(sample(r.body, 'crabwatt_windows_total')).toBe('9');
    expect(sample(r.body, 'crabwatt_power_watts')).toBe('2300');
    expect(sample(r.body, 'crabwatt_frequency_hertz')).toBe('50');
    expect(sample(r.body, 'crabwatt_link_state', `device="${DEVICE}",state="connected"`)).toBe('1');
    expect(sample(r.body, 'crabwatt_link_state', `device="${DEVICE}",state="disconnected"`)).toBe('0');
    expect(r.body).toMatch(/^crabwatt_database_bytes 12345$/m);
    // The power-quality analysis' counters, where it runs.
    expect(sample(r.body, 'crabwatt_waveform_lost_samples_total')).toBe('64');
    expect(sample(r.body, 'crabwatt_waveform_gaps_total')).toBe('2');
    expect(sample(r.body, 'crabwatt_pq_windows_total')).toBe('48');
    expect(sample(r.body, 'crabwatt_pq_events_total')).toBe('1');
    const device = (await app.inject({ url: `/api/devices/${DEVICE}` })).json() as { pq: Record<string, unknown> };
    expect(device.pq).toMatchObject({ waveform_frames: 2441, waveform_lost_samples: 64, gap_windows: 3, declared_v: 230, error: null });
  });

  it('drops the readings of a device that is not connected, and keeps its energy', async () => {
    const f = fakes();
    app = await buildApp(f);
    f.live.emit('window', liveWindow(Date.now()));
    f.devices.info = { ...f.devices.info, state: 'reconnecting' };
    const r = await app.inject({ method: 'GET', url: '/metrics' });
    expect(sample(r.body, 'crabwatt_power_watts')).toBeUndefined();
    expect(sample(r.body, 'crabwatt_energy_wh_total')).toBeDefined();
    expect(sample(r.body, 'crabwatt_link_state', `device="${DEVICE}",state="reconnecting"`)).toBe('1');
  });

  it('needs the token when one is configured', async () => {
    app = await buildApp({ ...fakes(), token: TOKEN });
    expect((await app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(401);
    const ok = await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.statusCode).toBe(200);
  });

  it('is in the OpenAPI document as text/plain', async () => {
    app = await buildApp(fakes());
    const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json() as {
      paths: Record<string, { get?: { responses: Record<string, { content?: Record<string, unknown> }> } }>;
    };
    expect(Object.keys(doc.paths['/metrics']?.get?.responses['200']?.content ?? {})).toEqual(['text/plain']);
  });
});
