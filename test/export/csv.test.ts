import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CSV_HEADER, estimateExportRows, exportCsvChunks, ExportArgumentError, parseExportRequest, writeCsv, type ExportRequest } from '../../server/export/csv.ts';
import { PIPE_SLOTS } from '../../server/export/pipe.ts';
import { StoreReader } from '../../server/store/query.ts';
import { Store, type DeviceRef } from '../../server/store/store.ts';
import { derivedFor, makeWindow, tempDir } from '../store/helpers.ts';

const FS = 1000;
const WINDOW_SAMPLES = 5000; // 5 s windows at 1 kHz
const SPRING_START = Date.UTC(2026, 2, 28, 20, 0, 0); // Berlin switches to CEST at 2026-03-29T01:00Z
const AUTUMN_START = Date.UTC(2026, 9, 24, 20, 0, 0); // back to CET at 2026-10-25T01:00Z
const SPAN_MS = 30 * 3_600_000;

let cleanup: () => void;
let store: Store;
let reader: StoreReader;
let dev: DeviceRef;

/** Windows covering [start, start + SPAN_MS) completely, each 5 s with sum_vi 1e9 LSB². */
function fill(startMs: number, epochBoot: number): void {
  dev = store.attachDevice({ deviceId: 0xabcdn, bootId: epochBoot, fsNum: FS, fsDen: 1, defaultKv: 0.05, defaultKi: 0.004 }, startMs);
  for (let end = WINDOW_SAMPLES; end <= SPAN_MS; end += WINDOW_SAMPLES) {
    store.addWindow(dev, makeWindow(BigInt(end), WINDOW_SAMPLES, 1_000_000_000n), derivedFor(100), startMs + end);
  }
  store.flush();
}

function csv(req: Omit<ExportRequest, 'device'>, chunkChars?: number): string[] {
  return [...exportCsvChunks(reader, { ...req, device: dev.hex }, chunkChars)].join('').trimEnd().split('\n');
}

const col = (line: string, name: string): string => line.split(',')[CSV_HEADER.split(',').indexOf(name)]!;

beforeAll(() => {
  const t = tempDir('crabwatt-export-');
  cleanup = t.cleanup;
  store = Store.open(join(t.dir, 'e.sqlite'));
  fill(SPRING_START, 1);
  fill(AUTUMN_START, 2);
  reader = new StoreReader(store.db);
});

afterAll(() => {
  store.close();
  cleanup();
});

describe('CSV export', () => {
  it('starts with the documented header', () => {
    const lines = csv({ fromMs: SPRING_START, toMs: SPRING_START + 60_000, interval: '1m', tz: 'UTC' });
    expect(lines[0]).toBe(CSV_HEADER);
    expect(lines[1]).toMatch(/^2026-03-28T20:00:00Z,/);
    expect(lines).toHaveLength(2);
  });

  it('writes offsets across the spring DST change with 15 min buckets on the local wall clock', () => {
    const from = Date.UTC(2026, 2, 29, 0, 30);
    const lines = csv({ fromMs: from, toMs: from + 3_600_000, interval: '15m', tz: 'Europe/Berlin' }).slice(1);
    expect(lines.map((l) => l.split(',')[0])).toEqual([
      '2026-03-29T01:30:00+01:00',
      '2026-03-29T01:45:00+01:00',
      '2026-03-29T03:00:00+02:00',
      '2026-03-29T03:15:00+02:00',
    ]);
    // Each bucket is full: 15 min of 1 kHz samples.
    for (const l of lines) {
      expect(col(l, 'samples')).toBe('900000');
      expect(col(l, 'coverage')).toBe('1');
    }
  });

  it('repeats the local hour in autumn with distinct offsets', () => {
    const from = Date.UTC(2026, 9, 24, 23, 0);
    const lines = csv({ fromMs: from, toMs: from + 4 * 3_600_000, interval: '1h', tz: 'Europe/Berlin' }).slice(1);
    expect(lines.map((l) => l.split(',')[0])).toEqual([
      '2026-10-25T01:00:00+02:00',
      '2026-10-25T02:00:00+02:00',
      '2026-10-25T02:00:00+01:00',
      '2026-10-25T03:00:00+01:00',
    ]);
  });

  it('makes local days of 23 and 25 hours, with energy exact to the nWh', () => {
    // The range is wider than the data so that the partly covered first and last days are whole buckets in it.
    const DAY = 86_400_000;
    const spring = csv({ fromMs: SPRING_START - DAY, toMs: SPRING_START + SPAN_MS + DAY, interval: '1d', tz: 'Europe/Berlin' }).slice(1);
    const day = spring.find((l) => l.startsWith('2026-03-29T00:00:00+01:00'))!;
    expect(day).toBeDefined();
    // Fully covered 23-hour day: 23 h of samples, 23·3600/5 windows of 1e9 LSB² each.
    expect(col(day, 'samples')).toBe(String(23 * 3600 * FS));
    expect(col(day, 'coverage')).toBe('1');
    const autumn = csv({ fromMs: AUTUMN_START - DAY, toMs: AUTUMN_START + SPAN_MS + DAY, interval: '1d', tz: 'Europe/Berlin' }).slice(1);
    const long = autumn.find((l) => l.startsWith('2026-10-25T00:00:00+02:00'))!;
    expect(col(long, 'samples')).toBe(String(25 * 3600 * FS));
    // The days add up to the device counter: nothing lost or doubled by folding.
    const sumNwh = (lines: string[]) => lines.reduce((a, l) => a + BigInt(col(l, 'energy_wh').replace('.', '')), 0n);
    expect(sumNwh(spring) + sumNwh(autumn)).toBe(store.totalNwh(dev));
  });

  it('aligns 15 min buckets to a +05:45 zone and 1 h buckets to a +05:30 zone', () => {
    const from = SPRING_START + 3_600_000;
    const kathmandu = csv({ fromMs: from, toMs: from + 2 * 3_600_000, interval: '15m', tz: 'Asia/Kathmandu' }).slice(1);
    for (const l of kathmandu) expect(l).toMatch(/^2026-03-29T\d\d:(00|15|30|45):00\+05:45,/);
    const india = csv({ fromMs: from, toMs: from + 5 * 3_600_000, interval: '1h', tz: 'Asia/Kolkata' }).slice(1);
    expect(india.length).toBeGreaterThanOrEqual(4);
    for (const l of india) {
      expect(l).toMatch(/^2026-03-29T\d\d:00:00\+05:30,/);
      expect(col(l, 'samples')).toBe(String(3600 * FS));
    }
  });

  it('exports raw windows with millisecond timestamps of their end', () => {
    const lines = csv({ fromMs: SPRING_START, toMs: SPRING_START + 20_000, interval: 'raw', tz: 'America/New_York' }).slice(1);
    expect(lines.map((l) => l.split(',')[0])).toEqual([
      '2026-03-28T16:00:05.000-04:00',
      '2026-03-28T16:00:10.000-04:00',
      '2026-03-28T16:00:15.000-04:00',
    ]);
    expect(col(lines[0]!, 'coverage')).toBe('');
  });

  it('estimates the rows an export will write, closely enough for a progress bar', () => {
    for (const interval of ['1s', '15m', '1h', '1d'] as const) {
      const req = { device: dev.hex, fromMs: SPRING_START - 86_400_000, toMs: SPRING_START + SPAN_MS + 86_400_000, interval, tz: 'UTC' };
      const actual = csv(req).length - 1;
      const estimate = estimateExportRows(reader, req);
      if (interval === '1s' || interval === '15m') expect(estimate, interval).toBe(actual);
      expect(estimate, interval).toBeGreaterThanOrEqual(actual * 0.6);
      expect(estimate, interval).toBeLessThanOrEqual(actual * 1.5);
    }
  });

  it('streams in chunks rather than one string', () => {
    const chunks = [...exportCsvChunks(reader, { device: dev.hex, fromMs: SPRING_START, toMs: SPRING_START + SPAN_MS, interval: '1s', tz: 'UTC' }, 4096)];
    expect(chunks.length).toBeGreaterThan(100);
    expect(chunks.join('').split('\n').length - 2).toBe(SPAN_MS / (WINDOW_SAMPLES));
  });

  it('stops with the stream error when the reader goes away, without hanging', async () => {
    let writes = 0;
    const out = new Writable({
      highWaterMark: 1024,
      write(_chunk, _enc, cb) {
        writes++;
        // The first chunk is taken; then the pipe breaks.
        if (writes === 1) setTimeout(cb, 5);
        else cb(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
      },
    });
    const req = { device: dev.hex, fromMs: SPRING_START, toMs: SPRING_START + SPAN_MS, interval: '1s' as const, tz: 'UTC' };
    await expect(writeCsv(reader, req, out)).rejects.toThrow(/EPIPE/);
    // The pipe has at most its slots in flight: the export stops there, not after its ~230 chunks.
    expect(writes).toBeLessThanOrEqual(PIPE_SLOTS + 1);
  });

  it('rejects bad arguments with a clear error', () => {
    const base = { device: 'x', from: '2026-03-29', to: '2026-03-30', interval: '1h', tz: 'Europe/Berlin' };
    expect(() => parseExportRequest({ ...base, tz: 'Mars/Olympus' })).toThrow(/unknown time zone 'Mars\/Olympus'/);
    expect(() => parseExportRequest({ ...base, interval: '5m' })).toThrow(/unknown interval '5m'/);
    expect(() => parseExportRequest({ ...base, from: 'yesterday' })).toThrow(ExportArgumentError);
    expect(() => parseExportRequest({ ...base, from: '2026-03-31' })).toThrow(/--from must be before --to/);
    const ok = parseExportRequest(base);
    expect(ok.fromMs).toBe(Date.UTC(2026, 2, 28, 23, 0)); // local midnight in Berlin (CET)
    expect(ok.toMs).toBe(Date.UTC(2026, 2, 29, 22, 0)); // local midnight after the switch (CEST)
  });
});
