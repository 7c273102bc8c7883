import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../server/api/app.ts';
import { storeFromReader } from '../../server/api/wire.ts';
import { exportCommand } from '../../server/cli/export.ts';
import { PQ_CSV_HEADERS } from '../../server/export/pq-csv.ts';
import { Ingest } from '../../server/ingest/ingest.ts';
import type { PqBatch } from '../../server/pq/live.ts';
import { pqStreamConfig } from '../../server/pq/settings.ts';
import { encodeFrame, FrameDecoder, type Frame } from '../../server/protocol/codec.ts';
import { SimulatedDevice } from '../../server/sim/device.ts';
import type { SupplyEventSpec } from '../../server/sim/supply-events.ts';
import { EARLY_EVENTS } from './fixtures/early-events.ts';
import { blobFloat64 } from '../../server/store/pq-rows.ts';
import { StoreReader } from '../../server/store/query.ts';
import { Store } from '../../server/store/store.ts';
import { FakeDevices } from '../api/fakes.ts';
import { tempDir } from '../store/helpers.ts';

describe('pqStreamConfig', () => {
  it('refuses a scale whose float64 sums of squares overflow (the calibration route takes kv up to 2^951), saying why', () => {
    expect(() => pqStreamConfig({ declaredV: 230, nominalHz: 50 }, 4e6, 2 ** 951, 0.002, 10)).toThrow(/cannot use kv = .*overflow/);
    expect(pqStreamConfig({ declaredV: 230, nominalHz: 50 }, 4e6, 0.05, 0.002, 10).kv).toBe(0.05);
  });
});

describe('live power-quality analysis in ingest', () => {
  let cleanup: () => void;
  let store: Store;
  let clock: number;
  beforeEach(() => {
    let dir: string;
    ({ dir, cleanup } = tempDir('crabwatt-pqlive-'));
    store = Store.open(join(dir, 'pq.sqlite'));
    clock = Date.UTC(2026, 5, 1);
  });
  afterEach(() => {
    store.close();
    cleanup();
  });

  /** A simulated device → FrameDecoder → Ingest with the analysis on; `keep` may lose frames. */
  function setup(seed: number, keep: (f: Frame) => boolean = () => true, supplyEvents?: readonly SupplyEventSpec[]) {
    const sim = new SimulatedDevice({ seed, speed: Infinity, ...(supplyEvents ? { supplyEvents } : {}) });
    const ingest = new Ingest({ store, kind: 'simulated', defaultScale: { kv: sim.kv, ki: sim.ki }, now: () => clock });
    ingest.startPq({ declaredV: 230, nominalHz: 50 });
    const batches: PqBatch[] = [];
    ingest.on('pq', (b: PqBatch) => batches.push(b));
    const decoder = new FrameDecoder();
    sim.setOutput((bytes) => {
      for (const frame of decoder.push(bytes)) if (keep(frame)) ingest.handleFrame(frame);
      return true;
    });
    sim.receive(encodeFrame('cmd_identify', 0, {}));
    const run = (seconds: number): void => {
      for (let k = 0; k < seconds * 5; k++) {
        sim.advance(sim.fs / 5);
        clock += 200;
      }
    };
    return { sim, ingest, batches, run };
  }

  it('analyses the waveform frames against the booked windows, counting nothing lost', () => {
    const { ingest, run } = setup(11);
    run(3);
    const c = ingest.pq!.counters;
    expect(ingest.pq!.error).toBe(null);
    expect(c.waveformFrames).toBeGreaterThan(100);
    // 15 windows in 3 s; the first lacks the resampling margin before it, the last may still wait for its.
    expect(c.pqWindows).toBeGreaterThanOrEqual(12);
    expect(c.pqGapWindows).toBeLessThanOrEqual(1);
    expect(c.waveformLostSamples).toBe(0);
    expect(c.waveformGaps).toBe(0);
  });

  it('counts lost waveform frames as lost stream samples and gaps, and analyses no window across them', () => {
    let waveforms = 0;
    const { ingest, run } = setup(12, (f) => f.name !== 'waveform' || ++waveforms % 40 !== 0);
    run(3);
    const c = ingest.pq!.counters;
    expect(c.waveformGaps).toBeGreaterThan(0);
    expect(c.waveformLostSamples).toBeGreaterThan(0);
    expect(c.waveformLostSamples % 1).toBe(0);
    expect(c.pqGapWindows).toBeGreaterThan(1);
    expect(c.pqWindows + c.pqGapWindows).toBeGreaterThanOrEqual(13);
  });

  it('stops with a clear error at a scale the analysis cannot hold, and resumes at a usable one', () => {
    const { sim, ingest, run } = setup(15);
    run(1);
    const registers = ingest.deviceRef!.calibration!;
    ingest.setCalibration(registers, 2 ** 900, 1e-275); // kv·ki as the ledger allows
    run(1);
    expect(ingest.pq!.error).toMatch(/cannot use kv = .*overflow/);
    const stopped = ingest.pq!.counters.pqWindows;
    run(1);
    expect(ingest.pq!.counters.pqWindows).toBe(stopped);
    ingest.setCalibration(registers, sim.kv, sim.ki);
    run(2);
    expect(ingest.pq!.error).toBe(null);
    expect(ingest.pq!.counters.pqWindows).toBeGreaterThan(stopped + 5);
  });

  it('stores, at a stop, every event seen (an open one cut) but not the interval in progress', () => {
    const { ingest, batches, run } = setup(16, undefined, EARLY_EVENTS);
    run(3.5);
    ingest.pq!.stop();
    store.flush();
    const detected = batches.flatMap((b) => b.events);
    expect(detected.length).toBe(ingest.pq!.counters.pqEvents);
    expect(store.db.prepare('SELECT count(*) FROM pq_events').pluck().get()).toBe(detected.length);
    expect(detected.length).toBeGreaterThan(1);
    expect(store.db.prepare('SELECT count(*) FROM pq_aggregates').pluck().get()).toBe(0);
  });

  it('restarts the stream at a device reset: no analysis across it, and the old boot is released', () => {
    const { sim, ingest, run } = setup(13);
    run(2);
    const before = { ...ingest.pq!.counters };
    sim.reset();
    run(2);
    const c = ingest.pq!.counters;
    expect(c.waveformGaps).toBe(before.waveformGaps + 1);
    // The new boot's first window again lacks margin: it is a gap window, not one analysed across the reset.
    expect(c.pqGapWindows).toBeGreaterThan(before.pqGapWindows);
    expect(c.waveformLostSamples).toBe(0);
  });

  it('stores the events with their Urms(1/2) trace and the 10-minute aggregate in the batch transaction, on the windows\' clock, served by the API and as CSV', async () => {
    const { sim, ingest, batches, run } = setup(14, undefined, EARLY_EVENTS);
    run(5);
    sim.reset(); // releases the first boot's open interval (cut) and events
    run(1);
    store.flush();
    const detected = batches.flatMap((b) => b.events);
    expect(detected.some((e) => e.kind === 'interruption')).toBe(true);
    expect(detected.some((e) => e.kind === 'dip')).toBe(true);
    const db = store.db;
    const events = db.prepare('SELECT * FROM pq_events ORDER BY t_start_ms, kind').all() as Record<string, unknown>[];
    expect(events.length).toBe(detected.length);
    expect(events.filter((e) => e['epoch'] === 1).length).toBeGreaterThan(2);
    expect(ingest.pq!.counters.pqEvents).toBe(detected.length);
    const firstEpoch = db.prepare('SELECT min(id) FROM epochs').pluck().get() as number;
    const windowTime = db.prepare('SELECT t_end_ms FROM windows WHERE epoch = ? AND end_index = ?').pluck();
    const nearest = db.prepare('SELECT end_index AS i, t_end_ms AS t FROM windows WHERE epoch = ? ORDER BY abs(end_index - ?) LIMIT 1');
    for (const e of events) {
      // Device index → wall time as the windows: 4000 samples per ms from the nearest stored window.
      const w = nearest.get(e['epoch'], e['start_index']) as { i: number; t: number };
      expect(Math.abs((e['t_start_ms'] as number) - (w.t + ((e['start_index'] as number) - w.i) / 4000))).toBeLessThanOrEqual(1);
      const trace = blobFloat64(e['trace'] as Buffer);
      expect(trace.length % 2).toBe(0);
      // The trace starts half a second before the event (or with the stream) and holds the value that was its extreme.
      expect(trace[0]!).toBeLessThan((e['start_index'] as number) > 4e6 ? -0.4 : 0.05);
      const urms = trace.filter((_, k) => k % 2 === 1);
      expect(urms.some((u) => Math.abs(u - (e['extreme_v'] as number)) < 1e-9)).toBe(true);
    }
    const aggregates = db.prepare('SELECT * FROM pq_aggregates').all() as Record<string, unknown>[];
    expect(aggregates.length).toBe(1);
    const a = aggregates[0]!;
    expect(a).toMatchObject({ epoch: firstEpoch, flagged: 1, interval_index: 0 });
    expect(a['windows'] as number).toBeGreaterThanOrEqual(20);
    // The same clock as the windows: the aggregate starts where a stored window ends.
    expect(Math.abs((a['t_start_ms'] as number) - (windowTime.get(firstEpoch, a['start_index']) as number))).toBeLessThanOrEqual(1);
    expect(Math.abs((a['t_end_ms'] as number) - (windowTime.get(firstEpoch, a['end_index']) as number))).toBeLessThanOrEqual(1);
    const h = blobFloat64(a['harmonics'] as Buffer);
    expect(h.length).toBe(150);
    expect(h[0]!).toBeGreaterThan(150);
    expect(a['thd_v'] as number).toBeGreaterThan(0);
    await throughApiAndCsv(store, ingest.deviceId!, events, a);
    // Retention as the windows': 14 days by default.
    store.applyRetention(clock + 13 * 86_400_000);
    expect(db.prepare('SELECT count(*) FROM pq_aggregates').pluck().get()).toBe(1);
    store.applyRetention(clock + 15 * 86_400_000);
    expect(db.prepare('SELECT (SELECT count(*) FROM pq_aggregates) + (SELECT count(*) FROM pq_events)').pluck().get()).toBe(0);
    expect(db.prepare('SELECT count(*) FROM windows').pluck().get()).toBe(0);
  });
});

/** The stored rows through the API routes (JSON and CSV) and `crabwatt export --pq`, as serve wires them. */
async function throughApiAndCsv(store: Store, device: string, events: Record<string, unknown>[], aggregate: Record<string, unknown>): Promise<void> {
  const devices = new FakeDevices();
  devices.info = { ...devices.info, id: device };
  devices.get = (id) => (id === device ? devices.info : undefined);
  const app = await buildApp({ store: storeFromReader(new StoreReader(store.db)), devices, live: new EventEmitter() });
  try {
    const range = `from=${Date.UTC(2026, 0, 1)}&to=${Date.UTC(2030, 0, 1)}`;
    const get = async (url: string, status = 200) => {
      const r = await app.inject({ url });
      expect(r.statusCode, r.body).toBe(status);
      return r;
    };
    const listed = (await get(`/api/devices/${device}/pq/events?${range}`)).json() as { events: { id: number; kind: string; t_start_ms: number; extreme_v: number }[] };
    expect(listed.events.map((e) => [e.kind, e.t_start_ms]).sort()).toEqual(events.map((e) => [e['kind'], e['t_start_ms']]).sort());
    const dip = listed.events.find((e) => e.kind === 'interruption')!;
    const one = (await get(`/api/devices/${device}/pq/events/${dip.id}`)).json() as { extreme_v: number; trace: { t_s: number[]; urms_v: number[] } };
    expect(one.extreme_v).toBe(dip.extreme_v);
    expect(one.trace.t_s.length).toBe(one.trace.urms_v.length);
    expect(one.trace.urms_v).toContain(dip.extreme_v);
    await get(`/api/devices/${device}/pq/events/999999`, 404);
    await get(`/api/devices/0000000000000000/pq/events?${range}`, 404);
    const h = (await get(`/api/devices/${device}/pq/harmonics?${range}`)).json() as { aggregates: { flagged: boolean; vrms: number; h_v: number[]; h_i: number[]; p_h: number[] }[] };
    expect(h.aggregates.length).toBe(1);
    const a = h.aggregates[0]!;
    expect(a).toMatchObject({ flagged: true, vrms: aggregate['vrms'] });
    expect([a.h_v.length, a.h_i.length, a.p_h.length]).toEqual([50, 50, 50]);

    const csv = (await get(`/api/devices/${device}/pq/harmonics.csv?${range}`)).body.trim().split('\n');
    expect(csv[0]).toBe(PQ_CSV_HEADERS.harmonics);
    expect(csv.length).toBe(2);
    const row = Object.fromEntries(csv[0]!.split(',').map((k, i) => [k, csv[1]!.split(',')[i]]));
    expect(row['flagged']).toBe('1');
    expect(Number(row['vrms_v'])).toBe(Number(a.vrms.toPrecision(9)));
    expect(Number(row['h3_a'])).toBe(Number(a.h_i[2]!.toPrecision(9)));
    const eventsCsv = (await get(`/api/devices/${device}/pq/events.csv?${range}&tz=Europe/Berlin`)).body.trim().split('\n');
    expect(eventsCsv[0]).toBe(PQ_CSV_HEADERS.events);
    expect(eventsCsv.length).toBe(events.length + 1);
    expect(eventsCsv[1]).toMatch(/^2026-06-01T02:00:\d\d\.\d{3}\+02:00,(dip|interruption|swell),/);
  } finally {
    await app.close();
  }
  // The command line writes the same file.
  store.flush();
  let out = '';
  const sink = new Writable({ write: (chunk, _enc, done) => ((out += String(chunk)), done()) });
  const io = { out: () => undefined, err: () => undefined };
  expect(await exportCommand(['--db', store.path, '--from', '2026-05-31', '--to', '2026-06-02', '--tz', 'UTC', '--pq', 'events'], io, sink)).toBe(0);
  expect(out.trim().split('\n').length).toBe(events.length + 1);
}
