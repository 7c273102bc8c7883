// Synthetic mains for the accuracy benchmark and the tests: sums of cosines sampled exactly at the
// decimated stream's instants, voltage events as steps of the voltage's scale, and the exact
// continuous-time IEC 61000-4-7 subgroups of such a signal (the reference the analysis is judged by).

import { MAX_ORDER } from './iec61000-4-7.ts';

export interface Tone {
  hz: number;
  /** RMS, in the channel's unit */
  rms: number;
  /** phase at t = 0, rad */
  phase: number;
}

/** From tStartS on (until tEndS) the voltage is multiplied by `factor` (0 = interruption). */
export interface VoltageStep {
  tStartS: number;
  tEndS: number;
  factor: number;
}

/** The voltage factor at t: the last step covering t wins. */
export function stepFactor(steps: readonly VoltageStep[], tS: number): number {
  let f = 1;
  for (const s of steps) if (tS >= s.tStartS && tS < s.tEndS) f = s.factor;
  return f;
}

/** n samples of Σ √2·rms·cos(2π·hz·t + phase) at t_k = (firstIndex + decimation·k) / deviceRateHz. */
export function sampleTones(
  tones: readonly Tone[],
  n: number,
  firstIndex: number,
  decimation: number,
  deviceRateHz: number,
  steps: readonly VoltageStep[] = [],
): Float64Array {
  const out = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    const t = (firstIndex + decimation * k) / deviceRateHz;
    let x = 0;
    for (const tone of tones) x += Math.SQRT2 * tone.rms * Math.cos(2 * Math.PI * tone.hz * t + tone.phase);
    out[k] = x * stepFactor(steps, t);
  }
  return out;
}

interface Complex {
  re: number;
  im: number;
}

/** (1/T)·∫_{t0}^{t0+T} x(t)·e^{−j2πm(t−t0)/T} dt of the tones, exactly (complex amplitude of bin m / 2). */
function binOf(tones: readonly Tone[], m: number, t0: number, T: number): Complex {
  let re = 0;
  let im = 0;
  for (const tone of tones) {
    const a = tone.rms / Math.SQRT2; // cos = (e^{jθ} + e^{−jθ}) / 2, peak √2·rms
    const theta0 = 2 * Math.PI * tone.hz * t0 + tone.phase;
    for (const sign of [1, -1]) {
      const dw = 2 * Math.PI * (sign * tone.hz - m / T);
      const ph = sign * theta0;
      if (Math.abs(dw * T) < 1e-12) {
        re += a * Math.cos(ph);
        im += a * Math.sin(ph);
      } else {
        // (e^{j(ph + dw·T)} − e^{j·ph}) / (j·dw·T)
        const dr = Math.cos(ph + dw * T) - Math.cos(ph);
        const di = Math.sin(ph + dw * T) - Math.sin(ph);
        re += (a * di) / (dw * T);
        im -= (a * dr) / (dw * T);
      }
    }
  }
  return { re, im };
}

/** Exact subgroup RMS of orders 1 … 50 and harmonic powers over a window [t0, t0 + T) of K cycles. */
export function referenceSubgroups(
  vTones: readonly Tone[],
  iTones: readonly Tone[],
  t0: number,
  T: number,
  cycles: number,
): { h_v: number[]; h_i: number[]; p_h: number[] } {
  const h_v: number[] = [];
  const h_i: number[] = [];
  const p_h: number[] = [];
  for (let h = 1; h <= MAX_ORDER; h++) {
    let sv = 0;
    let si = 0;
    let p = 0;
    for (let m = h * cycles - 1; m <= h * cycles + 1; m++) {
      // RMS of bin m = √2·|C_m| for m ≥ 1.
      const v = binOf(vTones, m, t0, T);
      const i = binOf(iTones, m, t0, T);
      sv += 2 * (v.re * v.re + v.im * v.im);
      si += 2 * (i.re * i.re + i.im * i.im);
      p += 2 * (v.re * i.re + v.im * i.im);
    }
    h_v.push(Math.sqrt(sv));
    h_i.push(Math.sqrt(si));
    p_h.push(p);
  }
  return { h_v, h_i, p_h };
}
