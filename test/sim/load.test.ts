import { describe, expect, it } from 'vitest';
import { DspCore, RESET_CONFIG, type DspConfig, type WindowRecord } from '../../server/dsp/model.ts';
import { derive, type Derived } from '../../server/dsp/derive.ts';
import { WINDOW_FLAG, WINDOW_MODE } from '../../server/protocol/definition.ts';
import { SAMPLE_RATE_HZ, SEGMENT_SAMPLES, SyntheticLoad, XorShift32, type LoadOptions } from '../../server/sim/load.ts';
import { SCENARIO_SPECS } from '../../server/sim/scenarios.ts';
import { FIRST_SUPPLY_EVENT_S, SupplyEvents } from '../../server/sim/supply-events.ts';
import { Decimator, DECIMATION, decimatorResponse } from '../../server/dsp/decimator.ts';
import { analyzeWindow } from '../../server/pq/iec61000-4-7.ts';

const FS = SAMPLE_RATE_HZ;
const HOUSEHOLD = ['heater', 'motor', 'smps', 'standby', 'emi-filter', 'dimmer'] as const;

/** Pins that leave exactly the named mains appliances on. */
function only(...on: string[]): Record<string, boolean> {
  return Object.fromEntries(HOUSEHOLD.map((name) => [name, on.includes(name)]));
}

/** Run `seconds` of the load through the exact model; return the windows with what the host derives. */
function measure(options: LoadOptions, seconds: number, config: Partial<DspConfig> = {}): { w: WindowRecord; d: Derived }[] {
  const load = new SyntheticLoad(options);
  const core = new DspCore({ ...RESET_CONFIG, ...config });
  const block = 1 << 16;
  const cv = new Uint16Array(block);
  const ci = new Uint16Array(block);
  const out: { w: WindowRecord; d: Derived }[] = [];
  for (let left = Math.round(seconds * FS); left > 0; left -= block) {
    const n = Math.min(block, left);
    load.fill(cv, ci, n);
    for (const w of core.process(cv, ci, n)) out.push({ w, d: derive(w, { kv: load.kv, ki: load.ki, fs: FS }) });
  }
  return out;
}

/** Whole-cycle windows only (not the first, partial one). */
const whole = (windows: { w: WindowRecord; d: Derived }[]) =>
  windows.filter(({ w }) => (w.flags & (WINDOW_FLAG.PARTIAL | WINDOW_FLAG.TIMEOUT | WINDOW_FLAG.CONFIG)) === 0);

describe('SyntheticLoad', () => {
  it('is deterministic for a seed whatever the chunking, and different for another seed', () => {
    const total = 3 * SEGMENT_SAMPLES + 1234;
    const a = new SyntheticLoad({ scenario: 'mains-230-50', seed: 42 });
    const cvA = new Uint16Array(total);
    const ciA = new Uint16Array(total);
    a.fill(cvA, ciA);

    const b = new SyntheticLoad({ scenario: 'mains-230-50', seed: 42 });
    const cvB = new Uint16Array(total);
    const ciB = new Uint16Array(total);
    // Odd chunk sizes that straddle segment boundaries in every way.
    for (let at = 0, k = 0; at < total; k++) {
      const n = Math.min(total - at, [1, 4095, 2, 7000, 333][k % 5]!);
      b.fill(cvB, ciB, n, at);
      at += n;
    }
    expect(Buffer.from(cvB.buffer).equals(Buffer.from(cvA.buffer))).toBe(true);
    expect(Buffer.from(ciB.buffer).equals(Buffer.from(ciA.buffer))).toBe(true);

    const c = new SyntheticLoad({ scenario: 'mains-230-50', seed: 43 });
    const cvC = new Uint16Array(total);
    const ciC = new Uint16Array(total);
    c.fill(cvC, ciC);
    expect(Buffer.from(cvC.buffer).equals(Buffer.from(cvA.buffer))).toBe(false);
  });

  it('produces 14-bit codes centred on mid-scale', () => {
    const load = new SyntheticLoad({ scenario: 'mains-120-60', seed: 1 });
    const cv = new Uint16Array(200_000);
    const ci = new Uint16Array(200_000);
    load.fill(cv, ci);
    let max = 0;
    let sum = 0;
    for (const c of cv) {
      max = Math.max(max, c);
      sum += c;
    }
    expect(max).toBeLessThanOrEqual(16383);
    expect(max).toBeGreaterThan(8192 + 4000);
    const mean = sum / cv.length - 8192;
    expect(Math.abs(mean)).toBeLessThan(50);
  });

  it('exposes the front-end scale: ±full scale over ±8192 codes', () => {
    const load = new SyntheticLoad({ scenario: 'mains-230-50', seed: 1 });
    expect(load.kv).toBeCloseTo(SCENARIO_SPECS['mains-230-50'].vFullScaleV / 8192, 12);
    expect(load.ki).toBeCloseTo(SCENARIO_SPECS['mains-230-50'].iFullScaleA / 8192, 12);
  });

  it('230 V / 50 Hz mains: voltage within a few % of nominal, frequency within 0.1 Hz', () => {
    const windows = whole(measure({ scenario: 'mains-230-50', seed: 7 }, 2.5));
    expect(windows.length).toBeGreaterThanOrEqual(10);
    for (const { d, w } of windows) {
      expect(d.vrms).toBeGreaterThan(230 * 0.95);
      expect(d.vrms).toBeLessThan(230 * 1.05);
      expect(d.freq_hz).not.toBeNull();
      expect(Math.abs(d.freq_hz! - 50)).toBeLessThan(0.1);
      expect(w.zc_count).toBe(RESET_CONFIG.cycles);
      // Harmonics make the voltage's crest factor differ from √2, but only a little.
      const crest = (Math.max(w.max_v, -w.min_v) * SCENARIO_SPECS['mains-230-50'].vFullScaleV / 8192) / d.vrms;
      expect(crest).toBeGreaterThan(1.3);
      expect(crest).toBeLessThan(1.5);
    }
  });

  it('120 V / 60 Hz mains', () => {
    const windows = whole(measure({ scenario: 'mains-120-60', seed: 7 }, 2));
    expect(windows.length).toBeGreaterThanOrEqual(10);
    for (const { d } of windows) {
      expect(d.vrms).toBeGreaterThan(120 * 0.95);
      expect(d.vrms).toBeLessThan(120 * 1.05);
      expect(Math.abs(d.freq_hz! - 60)).toBeLessThan(0.1);
    }
  });

  it('a resistive heater draws in phase: PF ≈ 1, P ≈ its rating', () => {
    const windows = whole(measure({ scenario: 'mains-230-50', seed: 3, pins: only('heater') }, 1));
    for (const { d } of windows) {
      expect(d.pf!).toBeGreaterThan(0.995);
      // Rated at nominal voltage; the actual voltage wanders and sags a little (P ∝ V²).
      expect(d.p).toBeGreaterThan(2000 * 0.9);
      expect(d.p).toBeLessThan(2000 * 1.1);
    }
  });

  it('a motor has a lagging power factor between 0.7 and 0.85', () => {
    const windows = whole(measure({ scenario: 'mains-230-50', seed: 3, pins: only('motor') }, 1));
    expect(windows.length).toBeGreaterThan(0);
    for (const { d } of windows) {
      expect(d.pf!).toBeGreaterThan(0.7);
      expect(d.pf!).toBeLessThan(0.85);
      expect(d.n).toBeGreaterThan(0.5 * d.p);
    }
    // Lagging: the current is closer to the voltage a quarter period *earlier* than to the voltage a
    // quarter period later, i.e. Q = mean(v(t − T/4)·i(t)) > 0.
    const load = new SyntheticLoad({ scenario: 'mains-230-50', seed: 3, pins: only('motor') });
    const n = FS / 50 * 4;
    const cv = new Uint16Array(n);
    const ci = new Uint16Array(n);
    load.fill(cv, ci);
    const quarter = FS / 50 / 4;
    let q = 0;
    for (let k = quarter; k < n; k++) q += (cv[k - quarter]! - 8192) * (ci[k]! - 8192);
    expect(q).toBeGreaterThan(0);
  });

  it('a switched-mode supply draws peaky current: crest factor well above a sine’s', () => {
    const windows = whole(measure({ scenario: 'mains-230-50', seed: 3, pins: only('smps') }, 1));
    const ki = SCENARIO_SPECS['mains-230-50'].iFullScaleA / 8192;
    for (const { d, w } of windows) {
      const crest = (Math.max(w.max_i, -w.min_i) * ki) / d.irms;
      expect(crest).toBeGreaterThan(2.2);
      // Distortion, not displacement, lowers its power factor.
      expect(d.pf!).toBeLessThan(0.8);
      expect(d.p).toBeGreaterThan(150 * 0.85);
      expect(d.p).toBeLessThan(150 * 1.15);
    }
  });

  it('a motor switching on draws an inrush current that decays', () => {
    // Find the first switch-on of the motor in the seeded schedule, everything else off.
    const pins = { heater: false, smps: false, standby: false, 'emi-filter': false, dimmer: false };
    const load = new SyntheticLoad({ scenario: 'mains-230-50', seed: 11, pins });
    const cv = new Uint16Array(FS / 50);
    const ci = new Uint16Array(FS / 50);
    const peaks: number[] = [];
    let wasOn = load.appliances().find((a) => a.name === 'motor')!.on;
    for (let cycle = 0; cycle < 50 * 300 && peaks.length < 20; cycle++) {
      load.fill(cv, ci);
      const on = load.appliances().find((a) => a.name === 'motor')!.on;
      if (on && (!wasOn || peaks.length > 0)) {
        let peak = 0;
        for (const c of ci) peak = Math.max(peak, Math.abs(c - 8192));
        peaks.push(peak);
      }
      wasOn = on;
    }
    expect(peaks.length).toBe(20);
    // The switch falls somewhere in the first cycle seen on; the next is wholly inside the inrush.
    // 20 cycles = 0.4 s ≈ 2.7 time constants later the current is back near its steady value.
    expect(Math.max(peaks[0]!, peaks[1]!) / peaks[19]!).toBeGreaterThan(2);
    expect(peaks[19]! / peaks[15]!).toBeGreaterThan(0.9);
  });

  it('appliances switch on and off over time following the schedule', () => {
    const load = new SyntheticLoad({ scenario: 'dc', seed: 5 });
    const seen = new Map<string, Set<boolean>>();
    const cv = new Uint16Array(FS / 10);
    const ci = new Uint16Array(FS / 10);
    for (let k = 0; k < 10 * 60; k++) {
      load.fill(cv, ci);
      for (const a of load.appliances()) {
        if (!seen.has(a.name)) seen.set(a.name, new Set());
        seen.get(a.name)!.add(a.on);
      }
    }
    expect([...seen.get('heater')!].sort()).toEqual([false, true]);
    expect([...seen.get('motor')!].sort()).toEqual([false, true]);
    expect([...seen.get('base')!]).toEqual([true]);
  });

  it('DC: 12 V with small ripple, 0 … 5 A, no zero crossings', () => {
    const windows = measure({ scenario: 'dc', seed: 9 }, 3, { mode: WINDOW_MODE.FIXED, fixed_samples: FS / 10 });
    expect(windows.length).toBe(30);
    for (const { d, w } of windows) {
      expect(d.v_dc).toBeGreaterThan(12 * 0.97);
      expect(d.v_dc).toBeLessThan(12 * 1.03);
      // The ripple is small: RMS barely above the mean.
      expect(d.vrms / d.v_dc).toBeLessThan(1.001);
      expect(d.i_dc).toBeGreaterThan(0);
      expect(d.i_dc).toBeLessThan(5);
      expect(w.zc_count).toBe(0);
      expect(d.p).toBeCloseTo(d.v_dc * d.i_dc, -1);
    }
  });

  it('rejects an unknown scenario, a non-integer seed and a pin naming no appliance', () => {
    expect(() => new SyntheticLoad({ scenario: 'mains-50' as never, seed: 1 })).toThrow(/unknown load scenario/);
    expect(() => new SyntheticLoad({ scenario: 'dc', seed: 1.5 })).toThrow(/seed/);
    expect(() => new SyntheticLoad({ scenario: 'dc', seed: 1, pins: { toaster: true } })).toThrow(/no appliance 'toaster'/);
    const load = new SyntheticLoad({ scenario: 'dc', seed: 1 });
    expect(() => load.fill(new Uint16Array(4), new Uint16Array(4), 5)).toThrow(RangeError);
  });
});

describe('SyntheticLoad power quality', () => {
  /** THD and 3rd harmonic of the current over one 10-cycle window, through the decimator like a device. */
  function currentHarmonics(pinned: string): { thd: number; third: number } {
    const load = new SyntheticLoad({ scenario: 'mains-230-50', seed: 5, pins: only(pinned) });
    const decimator = new Decimator();
    const n = 0.3 * FS;
    const cv = new Uint16Array(n);
    const ci = new Uint16Array(n);
    load.fill(cv, ci);
    const q = (c: Uint16Array): Int32Array => Int32Array.from(c, (x) => 4 * (x - 8192));
    const out = decimator.push(q(cv), q(ci));
    const slice = { v: Float64Array.from(out.v), i: Float64Array.from(out.i), firstIndex: Number(out.firstIndex), decimation: DECIMATION };
    // Any 10 whole cycles will do for the ratios (the grid is synchronous to 50 Hz within the wander).
    const start = 0.05 * FS;
    const a = analyzeWindow(slice, { start, end: start + 0.2 * FS, cycles: 10 }, { deviceRateHz: FS, response: decimatorResponse });
    return { thd: a.thd_i!, third: a.h_i[2]! / a.h_i[0]! };
  }

  it('a dimmer draws strong odd harmonics, a heater almost none', () => {
    const dimmer = currentHarmonics('dimmer');
    expect(dimmer.third).toBeGreaterThan(0.3);
    expect(dimmer.thd).toBeGreaterThan(0.4);
    const heater = currentHarmonics('heater');
    expect(heater.thd).toBeLessThan(0.05);
  });

  it('supply events: deterministic per seed, none in the first minutes, dips within their depth, interruptions at 0', () => {
    const [dips, interruptions] = SCENARIO_SPECS['mains-230-50'].supplyEvents;
    const scan = (spec: typeof dips, seed: number): { startS: number; min: number }[] => {
      const e = new SupplyEvents(spec!, new XorShift32(seed));
      const found: { startS: number; min: number }[] = [];
      let inside = false;
      for (let t = 0; t < 10 * 3600; t += 0.01) {
        const f = e.factorAt(t);
        if (f < 1 && !inside) found.push({ startS: t, min: f });
        if (f < 1) found.at(-1)!.min = Math.min(found.at(-1)!.min, f);
        inside = f < 1;
      }
      return found;
    };
    const a = scan(dips, 7);
    expect(scan(dips, 7)).toEqual(a);
    expect(scan(dips, 8)).not.toEqual(a);
    // 10 h at one per 15 min on average.
    expect(a.length).toBeGreaterThan(20);
    expect(a.length).toBeLessThan(70);
    expect(a[0]!.startS).toBeGreaterThanOrEqual(FIRST_SUPPLY_EVENT_S);
    for (const d of a) expect(d.min).toBeGreaterThanOrEqual(0.55 - 1e-9);
    const cuts = scan(interruptions, 7);
    expect(cuts.length).toBeGreaterThan(0);
    for (const d of cuts) expect(d.min).toBe(0);
  });
});
