import { describe, expect, it } from 'vitest';
import { WINDOW_FLAG, WINDOW_MODE } from '../../server/protocol/definition.ts';
import { DspCore, RESET_CONFIG, type WindowRecord } from '../../server/dsp/model.ts';
import { derive, deriveQuantities, energyNanoWattHours, frequencyHz } from '../../server/dsp/derive.ts';

const FS = 4_000_000;
// ±400 V and ±32 A full scale over ±8192 LSB (both exact binary fractions).
const KV = 400 / 8192;
const KI = 32 / 8192;
const scale = { kv: KV, ki: KI, fs: FS };

interface Harmonic {
  h: number;
  /** RMS value of the harmonic, V or A */
  rms: number;
  /** phase of the harmonic at t = 0, radians */
  phase: number;
}

/** Quantised ADC codes of Σ √2·rms·sin(h·ω·t + phase) + dc, in physical units scaled by k. */
function quantise(count: number, freqHz: number, k: number, harmonics: Harmonic[], dc = 0): Uint16Array {
  const out = new Uint16Array(count);
  const w = (2 * Math.PI * freqHz) / FS;
  for (let n = 0; n < count; n++) {
    let x = dc;
    for (const hm of harmonics) x += Math.SQRT2 * hm.rms * Math.sin(hm.h * w * n + hm.phase);
    out[n] = Math.round(x / k) + 8192;
  }
  return out;
}

/** The synchronised windows (whole cycles) of a stimulus in CYCLES mode. */
function wholeCycleWindows(cv: Uint16Array, ci: Uint16Array, cycles: number): WindowRecord[] {
  const core = new DspCore({ ...RESET_CONFIG, cycles, max_samples: 1 << 24 });
  const whole = core.process(cv, ci).filter((w) => w.flags === 0);
  expect(whole.length).toBeGreaterThan(0);
  return whole;
}

// Tolerances. A window spans K whole cycles to within ±1 sample out of N = K·fs/f ≈ 400 000, which
// perturbs a mean square by at most (peak²/rms²)/N ≈ 2·2.5e−6 (→ 2.5e−6 on an RMS value); rounding to
// 1 LSB adds 1/12 LSB² of noise power against rms² ≈ (4700 LSB)², i.e. < 1e−8. 1e−5 relative is
// four times the bound. Frequency: each interpolated crossing is within ±0.5 LSB / slope ≈ ±2 samples
// (0.4 LSB per sample at 4 Msps) over (K − 1)·80 000 samples: < 2e−5.
const REL = 1e-5;
const REL_FREQ = 2e-5;
const close = (actual: number, expected: number, rel: number): void => {
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual(rel * Math.abs(expected));
};

describe('derive: IEEE 1459 quantities against closed forms', () => {
  const f = 49.97;
  const cycles = 5;
  const count = Math.ceil((FS / f) * (3 * cycles + 1.5));
  const V: Harmonic[] = [
    { h: 1, rms: 230, phase: 0.4 },
    { h: 3, rms: 11.5, phase: 1.1 },
    { h: 5, rms: 6.9, phase: -0.7 },
  ];
  // Current: its own harmonics, each lagging its voltage harmonic by φh.
  const phi = [30, 60, -45].map((d) => (d * Math.PI) / 180);
  const Irms = [10, 3, 1.5];
  const I: Harmonic[] = V.map((v, k) => ({ h: v.h, rms: Irms[k]!, phase: v.phase - phi[k]! }));

  const vrms = Math.sqrt(V.reduce((a, v) => a + v.rms ** 2, 0));
  const irms = Math.sqrt(I.reduce((a, i) => a + i.rms ** 2, 0));
  const p = V.reduce((a, v, k) => a + v.rms * I[k]!.rms * Math.cos(phi[k]!), 0);
  const s = vrms * irms;
  const n = Math.sqrt(s * s - p * p);

  const windows = wholeCycleWindows(quantise(count, f, KV, V), quantise(count, f, KI, I), cycles);

  it('Vrms² = Σ Vh², Irms² = Σ Ih², P = Σ Vh·Ih·cos φh, S = Vrms·Irms, PF = P/S, N = √(S² − P²)', () => {
    for (const w of windows) {
      const d = derive(w, scale);
      close(d.vrms, vrms, REL);
      close(d.irms, irms, REL);
      close(d.p, p, REL);
      close(d.s, s, REL);
      close(d.pf!, p / s, REL);
      // δN ≈ (S·δS + P·δP)/N: the cancellation in S² − P² amplifies relative errors by (S² + P²)/N².
      expect(Math.abs(d.n - n)).toBeLessThanOrEqual(REL * ((s * s + p * p) / n));
      expect(Math.abs(d.v_dc)).toBeLessThan(0.01);
      expect(Math.abs(d.i_dc)).toBeLessThan(0.001);
    }
  });

  it('frequency from interpolated crossings; energy = P·duration', () => {
    for (const w of windows) {
      const d = derive(w, scale);
      expect(w.zc_count).toBe(cycles);
      close(d.freq_hz!, f, REL_FREQ);
      const hours = w.samples / FS / 3600;
      close(d.energy_wh, p * hours, REL);
      close(Number(d.energy_nwh), p * hours * 1e9, REL);
    }
  });

  it('the true RMS includes DC, reported beside it as v_dc and i_dc', () => {
    const dcV = 12.5;
    const dcI = -0.75;
    const cv = quantise(count, f, KV, V, dcV);
    const ci = quantise(count, f, KI, I, dcI);
    for (const w of wholeCycleWindows(cv, ci, cycles)) {
      const d = derive(w, scale);
      close(d.v_dc, dcV, 1e-3);
      close(d.i_dc, dcI, 1e-3);
      close(d.vrms, Math.sqrt(vrms ** 2 + dcV ** 2), REL);
      close(d.irms, Math.sqrt(irms ** 2 + dcI ** 2), REL);
      close(d.p, p + dcV * dcI, REL);
    }
  });

  it('a pure resistive load: PF 1, N ≈ 0; a pure reactive one: P ≈ 0, N = S, PF ≈ 0', () => {
    const fund = (rms: number, phase: number): Harmonic[] => [{ h: 1, rms, phase }];
    const cv = quantise(count, f, KV, fund(230, 0.2));
    const resistive = derive(wholeCycleWindows(cv, quantise(count, f, KI, fund(8, 0.2)), cycles)[0]!, scale);
    close(resistive.pf!, 1, REL);
    // N = √(S² − P²) has a quantisation floor: rounding noise (1/12 LSB² per channel, uncorrelated)
    // raises Vrms²·Irms² but not P², so S² − P² ≈ S²·ε with ε = (1/12)·(1/Vrms_lsb² + 1/Irms_lsb²).
    const eps = (1 / 12) * ((KV / 230) ** 2 + (KI / 8) ** 2);
    expect(resistive.n).toBeLessThan(2 * resistive.s * Math.sqrt(eps));
    const reactive = derive(wholeCycleWindows(cv, quantise(count, f, KI, fund(8, 0.2 - Math.PI / 2)), cycles)[0]!, scale);
    expect(Math.abs(reactive.p)).toBeLessThan(REL * reactive.s);
    close(reactive.n, 230 * 8, REL);
    expect(Math.abs(reactive.pf!)).toBeLessThan(REL);
  });
});

describe('derive: edge cases', () => {
  const base: WindowRecord = {
    end_index: 100n, samples: 100, sum_v: 0n, sum_i: 0n, sum_vv: 0n, sum_ii: 0n, sum_vi: 0n,
    min_v: 0, max_v: 0, min_i: 0, max_i: 0, zc_count: 0,
    zc_first_offset: 0, zc_first_prev: 0, zc_first_cur: 0, zc_last_offset: 0, zc_last_prev: 0, zc_last_cur: 0,
    flags: 0, config_seq: 0,
  };

  it('PF is null when S = 0; N never NaN', () => {
    const d = derive(base, scale);
    expect(d.pf).toBeNull();
    expect(d.n).toBe(0);
    expect(d.freq_hz).toBeNull();
  });

  it('frequency: linear interpolation between the samples around each crossing', () => {
    // First crossing 1/4 of the way from sample 9 (−30) to 10 (+90): t = 9.25; last at 20 − 1 + 0.5.
    const w = { ...base, zc_count: 3, zc_first_offset: 10, zc_first_prev: -30, zc_first_cur: 90,
      zc_last_offset: 20, zc_last_prev: -10, zc_last_cur: 10 };
    expect(frequencyHz(w, 1000)).toBeCloseTo((2 * 1000) / (19.5 - 9.25), 12);
    expect(frequencyHz({ ...w, flags: WINDOW_FLAG.ZC_OVERFLOW }, 1000)).toBeNull();
    expect(frequencyHz({ ...w, zc_count: 1 }, 1000)).toBeNull();
    // Samples that do not bracket zero cannot come from a conforming device: no number rather than junk.
    expect(frequencyHz({ ...w, zc_first_prev: 5 }, 1000)).toBeNull();
  });

  it('deriveQuantities is derive without the energy, value for value, and rejects what derive rejects', () => {
    const w = { ...base, samples: 977, sum_v: -12_345n, sum_i: 678n, sum_vv: 98_765_432_101n, sum_ii: 1_234_567_891n,
      sum_vi: -345_678_901n, zc_count: 3, zc_first_offset: 10, zc_first_prev: -30, zc_first_cur: 90,
      zc_last_offset: 700, zc_last_prev: -10, zc_last_cur: 10 };
    for (const win of [w, base]) {
      const { energy_wh: _wh, energy_nwh: _nwh, ...quantities } = derive(win, scale);
      expect(deriveQuantities(win, scale)).toEqual(quantities);
    }
    expect(() => deriveQuantities(base, { ...scale, ki: -1 })).toThrow(/scale\.ki/);
    expect(() => deriveQuantities({ ...base, samples: 0 }, scale)).toThrow(/samples/);
  });

  it('sums are in quarter-LSB, kv and ki per ADC LSB: every quantity divides the q factors out', () => {
    // Four samples of v = 100 LSB (400 q) and i = −3 LSB (−12 q).
    const w = { ...base, samples: 4, sum_v: 1600n, sum_i: -48n, sum_vv: 640_000n, sum_ii: 576n, sum_vi: -19_200n };
    const d = derive(w, { kv: 0.5, ki: 2, fs: 1000 });
    expect([d.vrms, d.irms, d.p, d.v_dc, d.i_dc]).toEqual([50, 6, -300, 50, -6]);
    expect(d.energy_wh).toBe((-300 * 4) / 1000 / 3600);
    // −1.2 J·... : −300 W for 4 ms = −1/3 mWh = −333 333.3 nWh
    expect(d.energy_nwh).toBe(-333_333n);
  });

  it('a gain step of 1/16384 shows in Vrms (it used to be rounded away with 1-LSB samples)', () => {
    const f = 50;
    const count = Math.ceil((FS / f) * 3.5);
    const cv = quantise(count, f, KV, [{ h: 1, rms: 230, phase: 0.4 }]);
    const ci = quantise(count, f, KI, [{ h: 1, rms: 10, phase: 0.4 }]);
    const at = (v_gain: number) => {
      const core = new DspCore({ ...RESET_CONFIG, cycles: 2, max_samples: 1 << 24, v_gain });
      return derive(core.process(cv, ci).find((w) => w.flags === 0)!, scale);
    };
    const one = at(16384);
    const step = at(16385);
    // The exact gain ratio is 1 + 61.04 ppm. A sample moves by 4·x0/16384 q, so codes below 2048 LSB still
    // lose it and the rest get it rounded to a whole q: on a noise-free sine that deterministic pattern
    // leaves a few ppm (measured 63.9 for Vrms here). With 1-LSB samples the ratio was exactly 0 ppm.
    const ppmV = (step.vrms / one.vrms - 1) * 1e6;
    const ppmP = (step.p / one.p - 1) * 1e6;
    expect(Math.abs(ppmV - 1e6 / 16384)).toBeLessThan(4);
    expect(Math.abs(ppmP - 1e6 / 16384)).toBeLessThan(4);
    expect(step.irms).toBe(one.irms);
  });

  it('rejects a bad scale or an empty window with a clear error', () => {
    expect(() => derive(base, { ...scale, kv: 0 })).toThrow(/scale\.kv/);
    expect(() => derive(base, { ...scale, fs: Number.NaN })).toThrow(/scale\.fs/);
    expect(() => derive({ ...base, samples: 0 }, scale)).toThrow(/samples/);
  });
});

describe('energyNanoWattHours: exact, rounded once to nearest, ties to even', () => {
  // kv·ki/fs = 0.125/1000 W per LSB²·sample and the sums are in quarter-LSB (16 q² per LSB²) →
  // 1 unit = 0.125e9/(1000·3600·16) = 625/288 nWh.
  const s = { kv: 0.5, ki: 0.25, fs: 1000 };
  it('rounds to nearest and ties to even, symmetric for negative energy', () => {
    expect(energyNanoWattHours(576n, s)).toBe(1250n);
    expect(energyNanoWattHours(16n, s)).toBe(35n); // 34.72
    expect(energyNanoWattHours(1n, s)).toBe(2n); // 2.17: the q² unit is not rounded to whole LSB² first
    expect(energyNanoWattHours(144n, s)).toBe(312n); // 312.5 → even
    expect(energyNanoWattHours(432n, s)).toBe(938n); // 937.5 → even
    expect(energyNanoWattHours(-144n, s)).toBe(-312n);
    expect(energyNanoWattHours(-16n, s)).toBe(-35n);
    expect(energyNanoWattHours(0n, s)).toBe(0n);
  });

  it('stays exact far beyond 2^53 (the 96-bit accumulator range)', () => {
    const e = 1n << 90n;
    const one = { kv: 1, ki: 1, fs: 1 };
    // 2^90·10^9/(3600·16), remainder far from a tie: plain rounding division as the independent check.
    expect(energyNanoWattHours(e, one)).toBe((e * 10n ** 9n + 28_800n) / 57_600n);
  });

  it('takes kv, ki and fs as the exact values of their doubles (0.1 is not 1/10)', () => {
    // 0.1 as a double is 3602879701896397/2^55, slightly above 1/10.
    const tenth = { kv: 0.1, ki: 1, fs: 1 };
    const e = 16n * 36n * 10n ** 17n; // 1/10 of it in nWh would be exactly 10^23
    const num = e * 3602879701896397n * 10n ** 9n;
    const den = 16n * 3600n * 2n ** 55n;
    const got = energyNanoWattHours(e, tenth);
    const err = got * den - num; // nearest: |got − num/den| ≤ 1/2
    expect(2n * (err < 0n ? -err : err) <= den).toBe(true);
    expect(got).toBeGreaterThan(10n ** 23n);
  });

  it('equals the unreduced exact rational rounded half-even, for arbitrary scales, ties included', () => {
    const exact = (raw: bigint, kv: number, ki: number, fs: number): { q: bigint; tie: boolean } => {
      // 2^-k scales (exact binary fractions) keep this reference independent of the double decomposition.
      const num = raw * BigInt(kv * 2 ** 40) * BigInt(ki * 2 ** 40) * 10n ** 9n;
      const den = 2n ** 80n * BigInt(fs) * 3600n * 16n;
      let q = num / den;
      let r = num % den;
      if (r < 0n) {
        q -= 1n;
        r += den;
      }
      const tie = 2n * r === den;
      return { q: 2n * r > den || (tie && (q & 1n) === 1n) ? q + 1n : q, tie };
    };
    let ties = 0;
    for (const [kv, ki, fs] of [[0.5, 0.25, 1000], [3 / 1024, 5 / 4096, 4_000_000], [1, 1, 1], [1 / 2 ** 20, 7 / 8, 48_000]] as const) {
      for (let k = -300n; k <= 300n; k++) {
        // Odd multiples of 144 lie on a tie at the first scale (625/288 nWh per unit).
        for (const raw of [k * 7_919n + (k % 3n) * 10n ** 15n, 144n * (2n * k + 1n)]) {
          const want = exact(raw, kv, ki, fs);
          expect(energyNanoWattHours(raw, { kv, ki, fs })).toBe(want.q);
          if (want.tie) ties++;
        }
      }
    }
    expect(ties).toBeGreaterThan(300);
  });
});
