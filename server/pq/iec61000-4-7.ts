// IEC 61000-4-7 harmonic analysis of one 10/12-cycle window of the decimated stream.
//
// The window is the DSP's own (start/end sample indices of a `window` frame spanning K whole cycles),
// so the analysis is synchronous: the stream is resampled to N = 2048 points spread evenly over exactly
// that span (band-limited interpolation, resample.ts) and transformed with a real FFT. Bin m is then the
// frequency m/T (T = the window's duration), harmonic order h lands on bin h·K with no leakage, and a
// harmonic subgroup (IEC 61000-4-7 §3.3) is the root-sum-square of bins h·K − 1, h·K, h·K + 1.
//
// THD is the subgroup THD (THDS) over orders 2 … 40 (the H = 40 of IEC 61000-4-7 and EN 50160);
// thd50 extends it to order 50 for users of IEC 61000-4-30's 50-order harmonic set.
// Harmonic active power per order is Σ Re(V·conj(I)) over the same three bins, so that for a resistive
// load it equals the product of the subgroups.

import FFT from 'fft.js';
import { HALF_TAPS, resampleAt } from './resample.ts';

export const MAX_ORDER = 50;
/** Highest order in `thd` (IEC 61000-4-7 H = 40); `thd50` runs to MAX_ORDER. */
export const THD_ORDER = 40;
/** Resampled points per window: a power of two above 2·3906 Hz · 0.2 s, so no order ≤ 50 folds back. */
export const POINTS = 2048;

/** A contiguous run of the decimated stream, already scaled to volts and amperes. */
export interface StreamSlice {
  v: Float64Array;
  i: Float64Array;
  /** sample index at the device rate of v[0] and i[0] */
  firstIndex: number;
  /** device samples per stream sample (512) */
  decimation: number;
}

/** A DSP window: device sample indices [start, end) spanning `cycles` whole fundamental cycles. */
export interface WindowSpan {
  start: number;
  end: number;
  cycles: number;
}

/** Complex gain of the decimating filter at a frequency (decimatorResponse of server/dsp/decimator.ts). */
export type FilterResponse = (fHz: number) => { re: number; im: number };

export interface HarmonicOptions {
  /** device sample rate, Hz (4 000 000) */
  deviceRateHz: number;
  /** the decimator's response; each bin is divided by it. Omitted: unity (synthetic streams). */
  response?: FilterResponse;
}

export interface HarmonicAnalysis {
  /** harmonic subgroup RMS of V, orders 1 … 50 (index 0 = order 1), V */
  h_v: number[];
  /** the same for I, A */
  h_i: number[];
  /** harmonic active power per order, W */
  p_h: number[];
  /** THDS over orders 2 … 40 (ratio); null without a fundamental */
  thd_v: number | null;
  thd_i: number | null;
  /** THDS over orders 2 … 50 (ratio) */
  thd50_v: number | null;
  thd50_i: number | null;
  /** RMS of the band-limited waveform over the window, V and A */
  vrms: number;
  irms: number;
  /** peak / RMS of the band-limited waveform over the window; null when RMS is 0 */
  crest_v: number | null;
  crest_i: number | null;
}

export class WindowSpanError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = 'WindowSpanError';
  }
}

const fft = new FFT(POINTS);
const spectrumV = fft.createComplexArray() as number[];
const spectrumI = fft.createComplexArray() as number[];
const bufV = new Float64Array(POINTS);
const bufI = new Float64Array(POINTS);

/** Device samples of stream margin needed on each side of a window. */
export function marginSamples(decimation: number): number {
  return (HALF_TAPS + 1) * decimation;
}

export function analyzeWindow(slice: StreamSlice, span: WindowSpan, opts: HarmonicOptions): HarmonicAnalysis {
  const { start, end, cycles } = span;
  if (!(end > start) || !Number.isInteger(cycles) || cycles < 1 || (MAX_ORDER + 1) * cycles + 1 >= POINTS / 2) {
    throw new WindowSpanError(`window [${start}, ${end}) with ${cycles} cycles cannot carry orders 1 … ${MAX_ORDER}`);
  }
  const d = slice.decimation;
  resampleAt(slice.v, (start - slice.firstIndex) / d, (end - start) / (POINTS * d), bufV);
  resampleAt(slice.i, (start - slice.firstIndex) / d, (end - start) / (POINTS * d), bufI);
  fft.realTransform(spectrumV, bufV);
  fft.realTransform(spectrumI, bufI);
  const binHz = opts.deviceRateHz / (end - start);
  // Bin m of a real signal: amplitude 2|X_m|/N, RMS √2|X_m|/N.
  const scale = Math.SQRT2 / POINTS;
  const h_v: number[] = [];
  const h_i: number[] = [];
  const p_h: number[] = [];
  for (let h = 1; h <= MAX_ORDER; h++) {
    let sv = 0;
    let si = 0;
    let p = 0;
    for (let m = h * cycles - 1; m <= h * cycles + 1; m++) {
      let vr = spectrumV[2 * m]! * scale;
      let vi = spectrumV[2 * m + 1]! * scale;
      let ir = spectrumI[2 * m]! * scale;
      let ii = spectrumI[2 * m + 1]! * scale;
      if (opts.response) {
        const g = opts.response(m * binHz);
        const g2 = g.re * g.re + g.im * g.im;
        [vr, vi] = [(vr * g.re + vi * g.im) / g2, (vi * g.re - vr * g.im) / g2];
        [ir, ii] = [(ir * g.re + ii * g.im) / g2, (ii * g.re - ir * g.im) / g2];
      }
      sv += vr * vr + vi * vi;
      si += ir * ir + ii * ii;
      p += vr * ir + vi * ii;
    }
    h_v.push(Math.sqrt(sv));
    h_i.push(Math.sqrt(si));
    p_h.push(p);
  }
  const v = peakAndRms(bufV);
  const i = peakAndRms(bufI);
  return {
    h_v,
    h_i,
    p_h,
    thd_v: thd(h_v, THD_ORDER),
    thd_i: thd(h_i, THD_ORDER),
    thd50_v: thd(h_v, MAX_ORDER),
    thd50_i: thd(h_i, MAX_ORDER),
    vrms: v.rms,
    irms: i.rms,
    crest_v: v.rms > 0 ? v.peak / v.rms : null,
    crest_i: i.rms > 0 ? i.peak / i.rms : null,
  };
}

/** √(Σ_{h=2}^{top} G_h²) / G_1, or null when G_1 is 0. */
export function thd(subgroups: readonly number[], top: number): number | null {
  const g1 = subgroups[0] ?? 0;
  if (!(g1 > 0)) return null;
  let sum = 0;
  for (let h = 2; h <= top; h++) sum += (subgroups[h - 1] ?? 0) ** 2;
  return Math.sqrt(sum) / g1;
}

function peakAndRms(x: Float64Array): { peak: number; rms: number } {
  let peak = 0;
  let sq = 0;
  for (const s of x) {
    peak = Math.max(peak, Math.abs(s));
    sq += s * s;
  }
  return { peak, rms: Math.sqrt(sq / x.length) };
}
