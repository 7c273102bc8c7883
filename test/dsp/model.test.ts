import { describe, expect, it } from 'vitest';
import { WINDOW_FLAG, WINDOW_MODE } from '../../server/protocol/definition.ts';
import {
  DspConfigError,
  DspCore,
  DspInputError,
  PHASE_LIMIT,
  RESET_CONFIG,
  type DspConfig,
  type WindowRecord,
} from '../../server/dsp/model.ts';
import { Xorshift32, type VectorCommit } from '../../server/dsp/vectors.ts';
import { literalModel } from './literal-model.ts';

const { CLIP_V, CLIP_I, SAT_V, SAT_I, PARTIAL, TIMEOUT, CONFIG, ZC_OVERFLOW } = WINDOW_FLAG;
const cfg = (over: Partial<DspConfig>): DspConfig => ({ ...RESET_CONFIG, ...over });
const IDENTITY = { v_offset: 0, i_offset: 0, v_gain: 16384, i_gain: 16384, phase: 0 } as const;

/** Codes from a function of the sample index (centred value, rounded and clamped to the ADC range). */
function codes(count: number, fn: (n: number) => number): Uint16Array {
  const out = new Uint16Array(count);
  for (let n = 0; n < count; n++) out[n] = Math.min(16383, Math.max(0, Math.round(fn(n)) + 8192));
  return out;
}

interface Run {
  windows: WindowRecord[];
  energies: bigint[];
  energyFinal: bigint;
  core: DspCore;
}

/** Drive a DspCore in blocks of random size (to prove block boundaries do not matter), with commits. */
function runChunked(
  cv: Uint16Array,
  ci: Uint16Array,
  config: DspConfig,
  commits: readonly VectorCommit[] = [],
  rng = new Xorshift32(99),
  maxChunk = 700,
): Run {
  const core = new DspCore(config);
  const windows: WindowRecord[] = [];
  const energies: bigint[] = [];
  let at = 0;
  const feed = (to: number): void => {
    while (at < to) {
      const len = Math.min(to - at, 1 + Math.floor(rng.next() * maxChunk));
      windows.push(...core.process(cv.subarray(at, at + len), ci.subarray(at, at + len)));
      energies.push(...core.lastEnergies);
      at += len;
    }
  };
  for (const c of commits) {
    feed(c.at_sample);
    core.commit(c.config);
  }
  feed(cv.length);
  windows.push(...core.process(new Uint16Array(0), new Uint16Array(0)));
  energies.push(...core.lastEnergies);
  return { windows, energies, energyFinal: core.energy, core };
}

function expectTiles(windows: readonly WindowRecord[], start = 0n): void {
  let s = start;
  for (const w of windows) {
    expect(w.samples).toBeGreaterThan(0);
    expect(w.end_index - BigInt(w.samples)).toBe(s);
    s = w.end_index;
  }
}

function randomConfig(rng: Xorshift32): DspConfig {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng.next() * xs.length)]!;
  const phaseMag = pick([0, rng.nextU32() % (4 * 65536), rng.nextU32() % PHASE_LIMIT, 65536, 65535]);
  return {
    mode: rng.next() < 0.75 ? WINDOW_MODE.CYCLES : WINDOW_MODE.FIXED,
    cycles: 1 + Math.floor(rng.next() * 4),
    fixed_samples: 1 + Math.floor(rng.next() * 900),
    max_samples: pick([1, 2, 150 + Math.floor(rng.next() * 3000), 4_000_000]),
    zc_hysteresis: pick([0, 64, Math.floor(rng.next() * 400), 32767]),
    v_offset: pick([0, rng.int(32767), rng.int(200)]),
    i_offset: pick([0, rng.int(32767), rng.int(200)]),
    v_gain: pick([16384, rng.nextU32() & 0xffff, 0, 65535]),
    i_gain: pick([16384, rng.nextU32() & 0xffff, 0, 65535]),
    phase: rng.next() < 0.5 ? phaseMag : -phaseMag,
  };
}

function randomStimulus(rng: Xorshift32, count: number): [Uint16Array, Uint16Array] {
  const period = 30 + rng.next() * 300;
  const ampV = rng.next() * 10000;
  const ampI = rng.next() * 10000;
  const dcV = rng.int(1500);
  const dcI = rng.int(1500);
  const noise = Math.floor(rng.next() * 300);
  const shift = rng.next() * 6;
  const cv = codes(count, (n) => dcV + ampV * Math.sin((2 * Math.PI * n) / period) + rng.int(noise));
  const ci = codes(count, (n) => dcI + ampI * Math.sin((2 * Math.PI * n) / period - shift) + rng.int(noise));
  return [cv, ci];
}

describe('DspCore against the literal transcription of docs/dsp.md', () => {
  it('agrees bit for bit on random stimulus, configurations, commits and block sizes', () => {
    const rng = new Xorshift32(2024);
    for (let trial = 0; trial < 60; trial++) {
      const count = 500 + Math.floor(rng.next() * 3500);
      const [cv, ci] = randomStimulus(rng, count);
      // One trial in four at the identity calibration, which the fast model takes a shortcut for.
      const config = trial % 4 === 0 ? cfg({ ...randomConfig(rng), ...IDENTITY }) : randomConfig(rng);
      const commits: VectorCommit[] = [];
      const nCommits = Math.floor(rng.next() * 4);
      for (let c = 0; c < nCommits; c++) {
        const next = rng.next() < 0.3 ? { ...randomConfig(rng), ...IDENTITY } : randomConfig(rng);
        commits.push({ at_sample: Math.floor(rng.next() * (count + 1)), config: next });
      }
      commits.sort((a, b) => a.at_sample - b.at_sample);
      const fast = runChunked(cv, ci, config, commits, rng);
      const lit = literalModel(cv, ci, config, commits);
      expect(fast.windows, `trial ${trial}`).toEqual(lit.windows);
      expect(fast.energies).toEqual(lit.energies);
      expect(fast.energyFinal).toBe(lit.energyFinal);
      expectTiles(fast.windows);
    }
  });

  it('counts crossings past 65535 as ZC_OVERFLOW and keeps the last crossing', () => {
    // Alternating ±100 every sample crosses on every second sample: 70 000 crossings in one window.
    const count = 140_002;
    const cv = codes(count, (n) => (n % 2 === 0 ? -100 : 100));
    const ci = codes(count, () => 5);
    const config = cfg({ mode: WINDOW_MODE.FIXED, fixed_samples: 140_000, zc_hysteresis: 10 });
    const fast = runChunked(cv, ci, config, [], new Xorshift32(5), 50_000);
    const lit = literalModel(cv, ci, config);
    expect(fast.windows).toEqual(lit.windows);
    const w = fast.windows[0]!;
    expect(w.zc_count).toBe(65535);
    expect(w.flags & ZC_OVERFLOW).toBe(ZC_OVERFLOW);
    expect(w.zc_first_offset).toBe(1);
    expect(w.zc_last_offset).toBe(139_999);
  });
});

describe('window close rules', () => {
  const period = 200;
  const sine = (count: number, amp = 5000, phase = -1) =>
    codes(count, (n) => amp * Math.sin((2 * Math.PI * n) / period + phase));

  it('CYCLES: a PARTIAL first window up to the first crossing, then exactly K whole cycles', () => {
    const cv = sine(3000);
    const { windows } = runChunked(cv, sine(3000, 2000), cfg({ cycles: 3 }));
    const [first, ...rest] = windows;
    expect(first!.flags).toBe(PARTIAL);
    expect(first!.zc_count).toBe(0);
    expect(rest.length).toBe(4);
    for (const w of rest) {
      expect(w.samples).toBe(3 * period);
      expect(w.zc_count).toBe(3);
      expect(w.zc_first_offset).toBe(0);
      expect(w.zc_last_offset).toBe(2 * period);
      expect(w.flags).toBe(0);
      expect(w.zc_first_prev).toBeLessThan(0);
      expect(w.zc_first_cur).toBeGreaterThanOrEqual(0);
    }
    expectTiles(windows);
  });

  it('CYCLES: no crossings → TIMEOUT windows of M samples, PARTIAL; a sine afterwards resynchronises', () => {
    const cv = codes(5000, (n) => (n < 2000 ? 3000 : 5000 * Math.sin((2 * Math.PI * (n - 2000)) / period + 3.5)));
    const { windows } = runChunked(cv, codes(5000, () => 100), cfg({ cycles: 2, max_samples: 600 }));
    expect(windows.slice(0, 3).map((w) => [w.samples, w.flags])).toEqual([
      [600, TIMEOUT | PARTIAL],
      [600, TIMEOUT | PARTIAL],
      [600, TIMEOUT | PARTIAL],
    ]);
    const synced = windows.filter((w) => w.flags === 0);
    expect(synced.length).toBeGreaterThan(0);
    for (const w of synced) expect(w.samples).toBe(2 * period);
    expectTiles(windows);
  });

  it('FIXED: windows of exactly N samples whatever the crossings, never PARTIAL or TIMEOUT', () => {
    const { windows } = runChunked(sine(5000), sine(5000), cfg({ mode: WINDOW_MODE.FIXED, fixed_samples: 777 }));
    expect(windows.length).toBe(6);
    for (const w of windows) {
      expect(w.samples).toBe(777);
      expect(w.flags).toBe(0);
    }
    // Crossings at n = 31.8 + 200k: 24 of them in 6·777 samples, each in the window that holds it.
    expect(windows.map((w) => w.zc_count)).toEqual([4, 4, 4, 4, 4, 4]);
    expect(windows[1]!.zc_first_offset).toBe(832 - 777);
  });

  it('a commit closes the open window at b with CONFIG, bumps config_seq and disarms the detector', () => {
    const cv = sine(4000);
    const ci = sine(4000, 1000);
    const b = 1234;
    const run = runChunked(cv, ci, cfg({ cycles: 2 }), [{ at_sample: b, config: cfg({ cycles: 2, v_gain: 20000 }) }]);
    const closed = run.windows.find((w) => w.end_index === BigInt(b))!;
    expect(closed.flags & CONFIG).toBe(CONFIG);
    expect(closed.config_seq).toBe(0);
    const after = run.windows.filter((w) => w.end_index > BigInt(b));
    expect(after[0]!.flags & PARTIAL).toBe(PARTIAL);
    expect(after.every((w) => w.config_seq === 1)).toBe(true);
    expect(run.core.configSeq).toBe(1);
    expectTiles(run.windows);
  });

  it('a commit at a boundary where the window is empty emits nothing; two at one sample count twice', () => {
    const fixed = cfg({ mode: WINDOW_MODE.FIXED, fixed_samples: 100 });
    const cv = sine(450);
    const run = runChunked(cv, cv, fixed, [
      { at_sample: 200, config: fixed },
      { at_sample: 300, config: fixed },
      { at_sample: 300, config: fixed },
    ]);
    expect(run.windows.map((w) => [w.samples, w.flags, w.config_seq])).toEqual([
      [100, 0, 0],
      [100, 0, 0],
      [100, 0, 1],
      [100, 0, 3],
    ]);
    expect(run.core.configSeq).toBe(3);
  });

  it('every sample lands in exactly one window and Σ sum_vi equals the energy delta', () => {
    const rng = new Xorshift32(7);
    const [cv, ci] = randomStimulus(rng, 20_000);
    const run = runChunked(cv, ci, cfg({ cycles: 1, max_samples: 900 }), [
      { at_sample: 7000, config: cfg({ mode: WINDOW_MODE.FIXED, fixed_samples: 333 }) },
    ]);
    expect(run.windows.length).toBeGreaterThan(20);
    expectTiles(run.windows);
    let e = 0n;
    for (const [k, w] of run.windows.entries()) {
      e += w.sum_vi;
      expect(run.energies[k]).toBe(e);
    }
    // What is left is the open window: its samples are in E but in no record yet.
    const closedSamples = run.windows.reduce((a, w) => a + w.samples, 0);
    expect(run.core.sampleIndex).toBe(20_000n);
    expect(run.windows.at(-1)!.end_index).toBe(BigInt(closedSamples));
    const open = literalModel(cv.subarray(closedSamples), ci.subarray(closedSamples), RESET_CONFIG).energyFinal;
    expect(run.energyFinal - e).toBe(open);
  });

  it('keeps sums exact past 2^53 in a 2^24-sample window (doubles are folded into BigInt)', () => {
    // Code 0 with offset 64 and gain 65408 gives v = i = −131071 quarter-LSB, unsaturated: v² is odd
    // and ≈ 2^34, so a plain double sum of 2^24 of them (≈ 2^58) would lose its low bits, and so would
    // one of 2^20 (≈ 2^54): the fold every 2^19 samples is what keeps it exact.
    // Blocks of 2^23 + 5: each process() call spans 16 fold segments and a partial one.
    const block = (1 << 23) + 5;
    const zeros = new Uint16Array(block);
    const over = { v_offset: 64, i_offset: 64, v_gain: 65408, i_gain: 65408 };
    const core = new DspCore(cfg({ mode: WINDOW_MODE.FIXED, fixed_samples: 1 << 24, ...over }));
    const windows: WindowRecord[] = [];
    for (let k = 0; k < 2; k++) windows.push(...core.process(zeros, zeros));
    expect(windows.length).toBe(1);
    const w = windows[0]!;
    const count = 1n << 24n;
    const y = -131071n;
    expect(w.min_v).toBe(Number(y >> 2n));
    expect(w.max_i).toBe(Number(y >> 2n));
    expect(w.sum_v).toBe(y * count);
    expect(w.sum_vv).toBe(y * y * count);
    expect(w.sum_vi).toBe(y * y * count);
    expect(w.flags).toBe(CLIP_V | CLIP_I);
    expect(core.energy).toBe(w.sum_vi + y * y * 10n);
  });
});

/** One window per sample (FIXED N=1), so each record shows one calibrated pair. */
function perSample(cv: Uint16Array, ci: Uint16Array, over: Partial<DspConfig>): WindowRecord[] {
  return new DspCore(cfg({ mode: WINDOW_MODE.FIXED, fixed_samples: 1, ...over })).process(cv, ci);
}

/** The calibrated pair of a one-sample window in quarter-LSB: its sums are the sample itself. */
const yOf = (w: WindowRecord): [number, number] => [Number(w.sum_v), Number(w.sum_i)];

describe('calibration', () => {
  it('y in quarter-LSB: offset subtracted exactly; min/max record floor(y / 4) in whole LSB', () => {
    const cv = codes(1, () => 100);
    const at = (offset: number) => perSample(cv, cv, { v_offset: offset })[0]!;
    // zq = 400; with gain 1.0 nothing is rounded away any more.
    expect([0, 2, 3, -2, -1, 401].map((o) => yOf(at(o))[0])).toEqual([400, 398, 397, 402, 401, -1]);
    expect([0, 2, 3, -2, -1, 401].map((o) => at(o).min_v)).toEqual([100, 99, 99, 100, 100, -1]);
    expect(at(401).max_v).toBe(-1); // −0.25 LSB floors to −1, not 0
  });

  it('gain in Q2.14 rounded half up at a quarter LSB: a step of 1/16384 is kept', () => {
    const one = codes(1, () => 1000);
    expect(yOf(perSample(one, one, { v_gain: 24576 })[0]!)[0]).toBe(6000);
    expect(yOf(perSample(one, one, { v_gain: 0 })[0]!)[0]).toBe(0);
    // zq = 32764: gain 16385 gives 32765.9998 → 32766, two quarter-LSB above the identity's 32764.
    const top = codes(1, () => 8191);
    expect(yOf(perSample(top, top, { v_gain: 16385, i_gain: 16384 })[0]!)).toEqual([32766, 32764]);
    // x1 = 1000·4 − 0, gain 16388: 4000.98 → 4001; gain 16386: 4000.49 → 4000 (ties would go up).
    expect(yOf(perSample(one, one, { v_gain: 16388, i_gain: 16386 })[0]!)).toEqual([4001, 4000]);
  });

  it('SAT only when sat18 clamps, not when a value lands on a rail', () => {
    // zq = 32764, offset −32642 → x1 = 65406: gain 32833 gives 131071.x → 131071 without clamping,
    // gain 32834 gives 131075 → clamped to 131071 with SAT. (Code 16383 is also a CLIP.)
    const top = codes(1, () => 8191);
    const atRail = perSample(top, top, { v_offset: -32642, i_offset: -32642, v_gain: 32833, i_gain: 32834 })[0]!;
    expect(yOf(atRail)).toEqual([131071, 131071]);
    expect(atRail.max_v).toBe(32767);
    expect(atRail.max_i).toBe(32767);
    expect(atRail.flags).toBe(SAT_I | CLIP_V | CLIP_I);
    // zq = −32768, offset 32706 → x1 = −65474: gain 32799 lands on −131072, gain 32800 clamps.
    const bottom = codes(1, () => -8192);
    const low = perSample(bottom, bottom, { v_offset: 32706, i_offset: 32706, v_gain: 32799, i_gain: 32800 })[0]!;
    expect(yOf(low)).toEqual([-131072, -131072]);
    expect(low.min_v).toBe(-32768);
    expect(low.flags).toBe(SAT_I | CLIP_V | CLIP_I);
    const max = perSample(bottom, top, { v_offset: 32767, v_gain: 65535 })[0]!;
    expect(yOf(max)[0]).toBe(-131072);
    expect(max.flags & (SAT_V | CLIP_V)).toBe(SAT_V | CLIP_V);
  });

  it('CLIP flags exactly at codes 0 and 16383, per channel', () => {
    const flagsOf = (c: number, d: number) =>
      perSample(Uint16Array.of(c), Uint16Array.of(d), {})[0]!.flags;
    expect(flagsOf(0, 8192)).toBe(CLIP_V);
    expect(flagsOf(16383, 8192)).toBe(CLIP_V);
    expect(flagsOf(8192, 0)).toBe(CLIP_I);
    expect(flagsOf(1, 16382)).toBe(0);
  });

  it('integer phase delays the current (positive) or the voltage (negative) by whole samples', () => {
    const impulse = codes(20, (n) => (n === 10 ? 1000 : 0));
    const pos = perSample(impulse, impulse, { phase: 3 * 65536 });
    expect(pos.findIndex((w) => w.min_v === 1000)).toBe(10);
    expect(pos.findIndex((w) => w.min_i === 1000)).toBe(13);
    const neg = perSample(impulse, impulse, { phase: -3 * 65536 });
    expect(neg.findIndex((w) => w.min_v === 1000)).toBe(13);
    expect(neg.findIndex((w) => w.min_i === 1000)).toBe(10);
  });

  it('fractional phase interpolates linearly between neighbours (2.25 samples)', () => {
    const impulse = codes(20, (n) => (n === 10 ? 1000 : 0));
    for (const sign of [1, -1]) {
      const rows = perSample(impulse, impulse, { phase: sign * (2 * 65536 + 16384) });
      const late = rows.map((w) => (sign > 0 ? w.min_i : w.min_v));
      const early = rows.map((w) => (sign > 0 ? w.min_v : w.min_i));
      expect(early[10]).toBe(1000);
      expect(late.slice(10, 15)).toEqual([0, 0, 750, 250, 0]);
    }
  });

  it('the delay line holds raw codes across a commit (history does not depend on calibration)', () => {
    const ramp = codes(40, (n) => n * 10);
    const core = new DspCore(cfg({ mode: WINDOW_MODE.FIXED, fixed_samples: 1, v_gain: 0 }));
    core.process(ramp.subarray(0, 20), ramp.subarray(0, 20));
    core.commit(cfg({ mode: WINDOW_MODE.FIXED, fixed_samples: 1, phase: -5 * 65536 }));
    const rows = core.process(ramp.subarray(20), ramp.subarray(20));
    expect(rows[0]!.min_v).toBe(150); // x0[15], written while gain was 0
    expect(rows[0]!.flags).toBe(0);
  });
});

describe('zero-crossing hysteresis', () => {
  it('noise smaller than the hysteresis neither double-counts nor crosses on its own', () => {
    const rng = new Xorshift32(11);
    // A slow sine (≈ 3 LSB per sample at zero) with ±30 LSB noise (60 peak to peak, below h = 64):
    // many sign changes near each crossing.
    const count = 40_000;
    const cv = codes(count, (n) => (n < 30_000 ? 2000 * Math.sin((2 * Math.PI * (n - 1000)) / 4000) : 0) + rng.int(30));
    const ci = codes(count, () => 0);
    const config = cfg({ mode: WINDOW_MODE.FIXED, fixed_samples: 10_000, zc_hysteresis: 64 });
    const windows = runChunked(cv, ci, config).windows;
    expect(windows.map((w) => w.zc_count)).toEqual([3, 2, 3, 0]);
    const noHysteresis = runChunked(cv, ci, { ...config, zc_hysteresis: 0 }).windows;
    expect(noHysteresis[0]!.zc_count).toBeGreaterThan(10);
    expect(noHysteresis[3]!.zc_count).toBeGreaterThan(100);
  });
});

describe('zero-crossing detector on quarter-LSB samples', () => {
  const fixed = (over: Partial<DspConfig>) => cfg({ mode: WINDOW_MODE.FIXED, fixed_samples: 100, zc_hysteresis: 10, ...over });
  const run = (x0: number[], over: Partial<DspConfig>) => {
    const cv = codes(100, (n) => x0[n] ?? 0);
    return new DspCore(fixed(over)).process(cv, cv)[0]!;
  };

  it('arms strictly below −4·h quarter-LSB (h in ADC LSB)', () => {
    // Identity: y = 4·x0, so −10 LSB is exactly −4h (does not arm) and −11 arms.
    const w = run([-10, 5, -11, 5], {});
    expect([w.zc_count, w.zc_first_offset, w.zc_first_prev, w.zc_first_cur]).toEqual([1, 3, -11, 5]);
    // Offset 1 quarter-LSB: −10 LSB gives y = −41 < −40 and arms.
    const shifted = run([-10, 5], { v_offset: 1 });
    expect(shifted.zc_count).toBe(1);
  });

  it('records the samples around a crossing as floor(y / 4): prev < 0 ≤ cur still holds', () => {
    // y = 4·x0 − 1: [−45, −1, 3]: the crossing is at 2, between y = −1 (→ −1) and y = 3 (→ 0).
    const w = run([-11, 0, 1], { v_offset: 1 });
    expect([w.zc_count, w.zc_first_offset, w.zc_first_prev, w.zc_first_cur]).toEqual([1, 2, -1, 0]);
    expect([w.zc_last_prev, w.zc_last_cur]).toEqual([-1, 0]);
  });
});

describe('bad input', () => {
  it('rejects codes above 14 bits with the position, after processing the samples before it', () => {
    const core = new DspCore(cfg({ mode: WINDOW_MODE.FIXED, fixed_samples: 1 }));
    const cv = Uint16Array.of(8192, 8193, 16384, 8192);
    expect(() => core.process(cv, cv)).toThrow(/sample 2 .*index 2.*16384/);
    expect(core.sampleIndex).toBe(2n);
    // The windows closed before the bad code are not lost: they travel with the error.
    const err = (() => {
      try {
        core.process(Uint16Array.of(8192, 65535), Uint16Array.of(8192, 8192));
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(DspInputError);
    expect((err as DspInputError).windows.map((w) => w.end_index)).toEqual([3n]);
    expect((err as DspInputError).energies).toEqual([core.energy]);
    expect(core.sampleIndex).toBe(3n);
    expect(core.process(Uint16Array.of(8200), Uint16Array.of(8200))[0]!.end_index).toBe(4n);
  });

  it('rejects a count beyond the arrays, and arrays of different lengths without a count', () => {
    const core = new DspCore();
    expect(() => core.process(new Uint16Array(4), new Uint16Array(3))).toThrow(/pass a count/);
    expect(core.process(new Uint16Array(4).fill(8192), new Uint16Array(3).fill(8192), 3)).toEqual([]);
    expect(() => core.process(new Uint16Array(4), new Uint16Array(3), 4)).toThrow(RangeError);
    expect(() => core.process(new Uint16Array(4), new Uint16Array(4), 1.5)).toThrow(RangeError);
  });

  it('rejects out-of-range configuration naming the field, and leaves the core unchanged', () => {
    expect(() => new DspCore(cfg({ cycles: 0 }))).toThrow(/cycles/);
    const core = new DspCore();
    expect(() => core.commit(cfg({ phase: PHASE_LIMIT }))).toThrow(DspConfigError);
    expect(() => core.commit(cfg({ v_gain: 65536 }))).toThrow(/v_gain/);
    expect(() => core.commit({ ...cfg({}), zc_hysteresis: 1.5 })).toThrow(/zc_hysteresis/);
    expect(() => core.commit({ mode: 0 } as DspConfig)).toThrow(/cycles/);
    expect(core.configSeq).toBe(0);
    expect(core.config).toEqual(RESET_CONFIG);
  });
});
