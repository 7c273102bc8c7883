// Figures for `crabwatt bench --json`: the model's accuracy against a float64 computation over the same
// samples, and its speed on one core.

import { performance } from 'node:perf_hooks';
import { derive } from './derive.ts';
import { CODE_MID, DspCore, GAIN_ONE, RESET_CONFIG, type DspConfig, type WindowRecord } from './model.ts';

/** The device's sample rate: the speed goal is 10× this. */
export const DEVICE_FS = 4_000_000;
const MAINS_HZ = 50;
const CYCLES = 10;

interface Tone {
  h: number;
  /** peak, LSB */
  amp: number;
  phase: number;
}

/** Near full-scale "mains" (peaks ≈ 7900 of 8191 LSB) with 3rd and 5th harmonics, in raw codes. */
function mainsCodes(count: number, tones: readonly Tone[]): Uint16Array {
  const out = new Uint16Array(count);
  const w = (2 * Math.PI * MAINS_HZ) / DEVICE_FS;
  for (let n = 0; n < count; n++) {
    let x = 0;
    for (const t of tones) x += t.amp * Math.sin(t.h * w * n + t.phase);
    out[n] = Math.round(x) + CODE_MID;
  }
  return out;
}

const V_TONES: readonly Tone[] = [
  { h: 1, amp: 7000, phase: 0.3 },
  { h: 3, amp: 600, phase: 1.0 },
  { h: 5, amp: 300, phase: -0.5 },
];
const I_TONES: readonly Tone[] = [
  { h: 1, amp: 6500, phase: 0.3 - 0.6 },
  { h: 3, amp: 900, phase: 0.2 },
  { h: 5, amp: 450, phase: 2.0 },
];

/**
 * float64 reference of one calibrated channel: the same interpolation, offset and gain as docs/dsp.md
 * but with no rounding at all (x0 history zero before sample 0, as the delay line).
 */
function referenceChannel(codes: Uint16Array, delay: number, frac: number, offsetQ: number, gain: number): Float64Array {
  const out = new Float64Array(codes.length);
  const x0 = (k: number): number => (k < 0 ? 0 : codes[k]! - CODE_MID);
  for (let n = 0; n < codes.length; n++) {
    const a = x0(n - delay);
    const aligned = a + (frac / 65536) * (x0(n - delay - 1) - a);
    out[n] = (aligned - offsetQ / 4) * (gain / GAIN_ONE);
  }
  return out;
}

export interface AccuracyFigure {
  /** |model − float64| / float64, parts per million of reading */
  vrms_ppm: number;
  irms_ppm: number;
  p_ppm: number;
}

export interface ModelAccuracy extends AccuracyFigure {
  /**
   * The same comparison with a non-trivial calibration (gains 1.0316 and 0.9691, offsets, phase
   * +2.305 samples), where the float64 reference applies the calibration without rounding. The
   * difference is then the cost of docs/dsp.md rounding the aligned and the calibrated sample to a
   * quarter LSB, not an error of the model: a gain correction moves a sample by a fraction of that
   * (so it survives only statistically) and at 4 Msps a fractional delay shifts a sample by a few
   * quarter-LSB at most.
   */
  calibrated: AccuracyFigure;
  /** The calibrated comparison over a grid of gains and phase fractions (see CALIBRATION_SWEEP). */
  calibrated_sweep: CalibrationSweep;
}

/** Worst case and mean of |model − float64| over a set of calibrations, ppm of reading. */
export interface CalibrationSweep {
  calibrations: number;
  worst: AccuracyFigure;
  mean: AccuracyFigure;
}

/**
 * One calibration is one point of a deterministic rounding pattern, not a bound, so the bench also
 * reports a grid: v_gain from the smallest Q2.14 step (16385) to ±3 % with i_gain = 2 − v_gain, and
 * phase 2 samples plus fractions 0 … 0.7, offsets 37 / −91 q.
 */
export const CALIBRATION_SWEEP = {
  v_gains: [16385, 16401, 16901, 15877],
  phase_fractions: [0, 0.1, 0.3, 0.5, 0.7],
} as const;

/**
 * Full-scale sines with harmonics as quantised codes go through DspCore; Vrms, Irms and P derived from
 * one whole-cycle window are compared with a float64 computation over exactly the same samples.
 * The top-level figures use the identity calibration (so they measure the integer pipeline and the
 * derivation: the sums are exact, the goal is ≤ 1 ppm); `calibrated` reports the calibrated case.
 */
export function measureModelAccuracy(): ModelAccuracy {
  const count = Math.ceil((DEVICE_FS / MAINS_HZ) * (CYCLES + 2));
  const cv = mainsCodes(count, V_TONES);
  const ci = mainsCodes(count, I_TONES);
  const identity = compare(cv, ci, { ...RESET_CONFIG, cycles: CYCLES });
  const calibrated = compare(cv, ci, {
    ...RESET_CONFIG,
    cycles: CYCLES,
    v_offset: 37,
    i_offset: -91,
    v_gain: 16901,
    i_gain: 15877,
    phase: 2 * 65536 + 20000,
  });
  const figures: AccuracyFigure[] = [];
  for (const vGain of CALIBRATION_SWEEP.v_gains) {
    for (const fraction of CALIBRATION_SWEEP.phase_fractions) {
      figures.push(
        compare(cv, ci, {
          ...RESET_CONFIG,
          cycles: CYCLES,
          v_offset: 37,
          i_offset: -91,
          v_gain: vGain,
          i_gain: 2 * GAIN_ONE - vGain,
          phase: 2 * 65536 + Math.round(fraction * 65536),
        }),
      );
    }
  }
  return { ...identity, calibrated, calibrated_sweep: summarise(figures) };
}

function summarise(figures: readonly AccuracyFigure[]): CalibrationSweep {
  const keys = ['vrms_ppm', 'irms_ppm', 'p_ppm'] as const;
  const worst = { vrms_ppm: 0, irms_ppm: 0, p_ppm: 0 };
  const mean = { vrms_ppm: 0, irms_ppm: 0, p_ppm: 0 };
  for (const f of figures) {
    for (const k of keys) {
      worst[k] = Math.max(worst[k], f[k]);
      mean[k] += f[k] / figures.length;
    }
  }
  return { calibrations: figures.length, worst, mean };
}

function compare(cv: Uint16Array, ci: Uint16Array, config: DspConfig): AccuracyFigure {
  const w = new DspCore(config).process(cv, ci).find((x) => x.flags === 0);
  if (!w) throw new Error('accuracy bench: no whole-cycle window closed (stimulus too short)');
  const model = derive(w, { kv: 1, ki: 1, fs: DEVICE_FS });
  const ref = reference(w, cv, ci, config);
  const ppm = (a: number, b: number): number => (Math.abs(a - b) / Math.abs(b)) * 1e6;
  return { vrms_ppm: ppm(model.vrms, ref.vrms), irms_ppm: ppm(model.irms, ref.irms), p_ppm: ppm(model.p, ref.p) };
}

function reference(w: WindowRecord, cv: Uint16Array, ci: Uint16Array, c: DspConfig) {
  const abs = Math.abs(c.phase);
  const d = Math.floor(abs / 65536);
  const f = abs % 65536;
  const v = referenceChannel(cv, c.phase < 0 ? d : 0, c.phase < 0 ? f : 0, c.v_offset, c.v_gain);
  const i = referenceChannel(ci, c.phase > 0 ? d : 0, c.phase > 0 ? f : 0, c.i_offset, c.i_gain);
  const end = Number(w.end_index);
  const start = end - w.samples;
  let vv = 0;
  let ii = 0;
  let vi = 0;
  for (let n = start; n < end; n++) {
    vv += v[n]! * v[n]!;
    ii += i[n]! * i[n]!;
    vi += v[n]! * i[n]!;
  }
  return { vrms: Math.sqrt(vv / w.samples), irms: Math.sqrt(ii / w.samples), p: vi / w.samples };
}

export interface ModelSpeed {
  /** sample pairs per CPU second through DspCore.process (one thread) */
  samples_per_s: number;
  /** samples_per_s / 4 Msps */
  realtime_factor: number;
  /** CPU time / wall time during the run: below 1 when other processes shared the core */
  cpu_share: number;
}

/**
 * Speed of DspCore.process over 50 Hz mains with harmonics and a non-trivial calibration (fractional
 * phase, gains, offsets), in blocks of 2^16 pairs, after a warm-up, for about `seconds` of wall time.
 * The rate is per CPU second of this process, so a busy machine (other processes on the same cores)
 * does not make the model look slower; the process's JIT and GC threads count against it.
 */
export function measureModelSpeed(seconds = 1): ModelSpeed {
  const block = 1 << 16;
  const period = DEVICE_FS / MAINS_HZ;
  // One whole number of blocks covering several cycles, cycled through so the data is not all cache-hot.
  const blocks = Math.ceil((3 * period) / block);
  const cv = mainsCodes(blocks * block, V_TONES);
  const ci = mainsCodes(blocks * block, I_TONES);
  const core = new DspCore({ ...RESET_CONFIG, v_offset: 12, i_offset: -7, v_gain: 16500, i_gain: 16300, phase: 70000 });
  const run = (k: number): void => {
    const at = (k % blocks) * block;
    core.process(cv.subarray(at, at + block), ci.subarray(at, at + block));
  };
  // Warm-up: the first window closes and commits take branches the JIT has not seen; let it settle.
  for (let k = 0; k < 48; k++) run(k);
  let done = 0;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  let elapsedMs = 0;
  while (elapsedMs < seconds * 1000) {
    for (let r = 0; r < 8; r++) run(done++);
    elapsedMs = performance.now() - t0;
  }
  const cpu = process.cpuUsage(cpu0);
  const cpuS = (cpu.user + cpu.system) / 1e6;
  const samplesPerS = (done * block) / cpuS;
  return { samples_per_s: samplesPerS, realtime_factor: samplesPerS / DEVICE_FS, cpu_share: cpuS / (elapsedMs / 1000) };
}
