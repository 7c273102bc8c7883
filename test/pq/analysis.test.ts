import { describe, expect, it } from 'vitest';
import { Aggregator, type PqWindowValues } from '../../server/pq/aggregate.ts';
import { eventCase, harmonicCase } from '../../server/pq/bench-accuracy.ts';
import { analyzeWindow, marginSamples, WindowSpanError } from '../../server/pq/iec61000-4-7.ts';
import { DEFAULT_THRESHOLDS, ThresholdError, VoltageMonitor } from '../../server/pq/iec61000-4-30.ts';
import { sampleTones } from '../../server/pq/synth.ts';

const R = 4_000_000;
const D = 512;

describe('IEC 61000-4-7 harmonic subgroups', () => {
  it.each([
    [50, 50],
    [49, 50],
    [61, 60],
  ])('meet the issue limits at %d Hz (nominal %d) with harmonics and interharmonics', (hz, nominal) => {
    const r = harmonicCase(hz, nominal);
    expect(r.worst_of_limit, r.worst_at).toBeLessThanOrEqual(1);
    expect(r.thd_error_pp).toBeLessThanOrEqual(0.05);
  });

  it('puts a pure harmonic in its order, with THD, harmonic power and crest factor', () => {
    const cycles = 10;
    const start = 1_000_000;
    const end = start + (cycles * R) / 50;
    const first = start - marginSamples(D) - D;
    const n = Math.ceil((end + marginSamples(D) - first) / D) + 1;
    const v = sampleTones([{ hz: 50, rms: 230, phase: 0 }, { hz: 150, rms: 23, phase: 0 }], n, first, D, R);
    // Current in phase with the voltage's 3rd harmonic only, 90° off on the fundamental.
    const i = sampleTones([{ hz: 50, rms: 5, phase: Math.PI / 2 }, { hz: 150, rms: 2, phase: 0 }], n, first, D, R);
    const a = analyzeWindow({ v, i, firstIndex: first, decimation: D }, { start, end, cycles }, { deviceRateHz: R });
    expect(a.h_v[0]).toBeCloseTo(230, 3);
    expect(a.h_v[2]).toBeCloseTo(23, 3);
    expect(a.h_v[1]).toBeLessThan(1e-3);
    expect(a.thd_v).toBeCloseTo(0.1, 5);
    expect(a.thd50_v).toBeCloseTo(0.1, 5);
    expect(a.p_h[0]).toBeCloseTo(0, 2);
    expect(a.p_h[2]).toBeCloseTo(46, 2);
    expect(a.vrms).toBeCloseTo(Math.hypot(230, 23), 2);
    expect(a.crest_v).toBeGreaterThan(1.2);
  });

  it('refuses a window that cannot carry order 50 and one the stream does not cover', () => {
    const x = new Float64Array(4000);
    const slice = { v: x, i: x, firstIndex: 0, decimation: D };
    expect(() => analyzeWindow(slice, { start: 100_000, end: 100_000, cycles: 10 }, { deviceRateHz: R })).toThrow(WindowSpanError);
    expect(() => analyzeWindow(slice, { start: 0, end: 80_000, cycles: 10 }, { deviceRateHz: R })).toThrow(/margin/);
  });
});

describe('IEC 61000-4-30 voltage monitor', () => {
  it.each([
    ['dip to 50 %, 300 ms', 50, 'dip', { tStartS: 1.0123, tEndS: 1.3123, factor: 0.5 }],
    ['interruption, 60 ms', 61, 'interruption', { tStartS: 2.0071, tEndS: 2.0671, factor: 0 }],
    ['swell to 120 %, 520 ms', 59, 'swell', { tStartS: 1.5, tEndS: 2.02, factor: 1.2 }],
    ['dip to 70 %, 11 ms', 50, 'dip', { tStartS: 1.003, tEndS: 1.014, factor: 0.7 }],
  ] as const)('times a %s at %d Hz within half a cycle', (name, hz, kind, step) => {
    const r = eventCase(name, hz, kind, step);
    expect(Math.abs(r.start_error_hc!)).toBeLessThanOrEqual(1);
    expect(Math.abs(r.duration_error_hc!)).toBeLessThanOrEqual(1);
  });

  it('reports Urms(1/2), the residual voltage and the 10 s frequency', () => {
    const hz = 50.3;
    const n = Math.ceil((21 * R) / D);
    const v = sampleTones([{ hz, rms: 230, phase: 1 }], n, 0, D, R, [{ tStartS: 5, tEndS: 5.5, factor: 0.6 }]);
    const m = new VoltageMonitor({ declaredV: 230, nominalHz: 50, ...DEFAULT_THRESHOLDS }, R, D);
    for (let k = 0; k < n; k += 1000) m.push(v.subarray(k, Math.min(n, k + 1000)), k * D);
    const steady = m.halfCycles.filter((h) => h.end < 4 * R);
    // Half-cycle refresh: about 2·f values per second, each one cycle long.
    expect(steady.length).toBeGreaterThan(2 * 4 * hz - 4);
    for (const h of steady.slice(1)) {
      expect(h.urms).toBeCloseTo(230, 1);
      expect((h.end - h.start) / R).toBeCloseTo(1 / hz, 4);
    }
    expect(m.events).toHaveLength(1);
    expect(m.events[0]!.kind).toBe('dip');
    expect(m.events[0]!.extremeV).toBeCloseTo(138, 0);
    expect(m.frequencies.map((f) => f.start / R)).toEqual([0, 10]);
    for (const f of m.frequencies) expect(f.hz).toBeCloseTo(hz, 4);
  });

  it('ends an open event at a gap and refuses a discontinuous push or bad thresholds', () => {
    const m = new VoltageMonitor({ declaredV: 230, nominalHz: 50, ...DEFAULT_THRESHOLDS }, R, D);
    const n = Math.ceil(R / D);
    m.push(sampleTones([{ hz: 50, rms: 230, phase: 0 }], n, 0, D, R, [{ tStartS: 0.5, tEndS: 2, factor: 0.3 }]), 0);
    expect(() => m.push(new Float64Array(10), 5 * n * D)).toThrow(/gap\(\)/);
    m.gap(n * D);
    expect(m.events).toMatchObject([{ kind: 'dip', end: n * D, cutByGap: true }]);
    expect(() => new VoltageMonitor({ declaredV: 230, nominalHz: 50, ...DEFAULT_THRESHOLDS, dipPct: 3 }, R, D)).toThrow(ThresholdError);
  });
});

describe('aggregation', () => {
  const win = (k: number, len: number): PqWindowValues => ({
    start: k * len,
    end: (k + 1) * len,
    vrms: k % 2 === 0 ? 220 : 240,
    irms: 1,
    h_v: Array.from({ length: 50 }, (_, h) => (h === 0 ? 230 : h === 2 ? 23 : 0)),
    h_i: Array.from({ length: 50 }, () => 0),
    p_h: Array.from({ length: 50 }, (_, h) => (h === 0 ? k : 0)),
  });

  it('makes 150-cycle blocks and 10-minute intervals, flagged where an event was', () => {
    const len = 800_000; // 10 cycles of 50 Hz
    const agg = new Aggregator(R);
    const events = { eventDuring: (s: number, e: number) => s < 20 * len && e > 20 * len, settledAfter: () => true };
    for (let k = 0; k < 3000 + 40; k++) agg.add(win(k, len));
    const out = agg.drain(events, true);
    const blocks = out.filter((a) => a.kind === 'cycles');
    const intervals = out.filter((a) => a.kind === '10min');
    // 600 s / 0.2 s = 3000 windows = 200 blocks per interval; the last 40 windows make 2 blocks and a partial interval.
    expect(blocks).toHaveLength(202);
    expect(intervals.map((a) => a.windows)).toEqual([3000, 40]);
    expect(blocks[0]!.vrms).toBeCloseTo(Math.sqrt((7 * 240 ** 2 + 8 * 220 ** 2) / 15), 9);
    expect(blocks[0]!.p_h[0]).toBeCloseTo(7, 9);
    expect(blocks[0]!.thd_v).toBeCloseTo(0.1, 12);
    expect(blocks.map((b) => b.flagged).indexOf(true)).toBe(1);
    expect(blocks.filter((b) => b.flagged)).toHaveLength(1);
    expect(intervals.map((a) => a.flagged)).toEqual([true, false]);
  });

  it('waits for the event detector before flagging, and restarts a block at a discontinuity', () => {
    const len = 800_000;
    const agg = new Aggregator(R);
    let settled = false;
    const events = { eventDuring: () => false, settledAfter: () => settled };
    for (let k = 0; k < 10; k++) agg.add(win(k, len));
    for (let k = 11; k < 26; k++) agg.add(win(k, len));
    expect(agg.drain(events)).toEqual([]);
    settled = true;
    const out = agg.drain(events);
    expect(out).toHaveLength(1);
    expect(out[0]!.start).toBe(11 * len);
  });
});
