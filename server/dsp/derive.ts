// Physical quantities from the exact integer sums of a window (docs/dsp.md, "What the host derives").
// Floating point is used once per window on the final sums, never to accumulate. Energy additionally
// has an exact integer form, nanowatt-hours, computed with BigInt rational arithmetic.
//
// Units: the sums are over calibrated samples in quarter-LSB (q), while kv and ki stay volts and amperes
// per ADC LSB everywhere a user sees them. So Σv carries a factor 4, Σv² and Σv·i a factor 16: they are
// divided out here (by powers of two, so exactly in float64 and in the BigInt rational).

import { WINDOW_FLAG } from '../protocol/definition.ts';
import type { WindowRecord } from './model.ts';

/** The host-side scale of the analog front end and the sample rate. */
export interface DeriveScale {
  /** volts per ADC LSB (the window sums are in quarter-LSB; derive() converts) */
  kv: number;
  /** amperes per ADC LSB */
  ki: number;
  /** samples per second (the device's sample_rate_num / sample_rate_den) */
  fs: number;
}

export interface Derived {
  /** true RMS voltage including DC, V */
  vrms: number;
  /** true RMS current including DC, A */
  irms: number;
  /** active power, W */
  p: number;
  /** apparent power vrms·irms, VA */
  s: number;
  /** power factor p/s; null when s = 0 */
  pf: number | null;
  /** non-active power √(s² − p²), var */
  n: number;
  v_dc: number;
  i_dc: number;
  /** from the interpolated first and last crossings; null with fewer than 2 (or a saturated count) */
  freq_hz: number | null;
  /** energy of the window, Wh (float, for display) */
  energy_wh: number;
  /** energy of the window, integer nWh, exactly rounded (see energyNanoWattHours) */
  energy_nwh: bigint;
}

/** Calibrated samples per ADC LSB (docs/dsp.md: y is in quarter-LSB). */
export const Q_PER_LSB = 4;
/** The same factor on a product of two samples (Σv², Σi², Σv·i). */
const Q2_PER_LSB2 = Q_PER_LSB * Q_PER_LSB;

export function validateScale(scale: DeriveScale): void {
  // Unrolled: this runs once per window.
  checkScaleTerm('kv', scale.kv);
  checkScaleTerm('ki', scale.ki);
  checkScaleTerm('fs', scale.fs);
}

function checkScaleTerm(key: string, x: unknown): void {
  if (typeof x !== 'number' || !Number.isFinite(x) || x <= 0) {
    throw new RangeError(`scale.${key} must be a finite number > 0, got ${String(x)}`);
  }
}

/** The per-window quantities without the energy: what the store keeps per window and rolls up. */
export type DerivedQuantities = Omit<Derived, 'energy_wh' | 'energy_nwh'>;

export function derive(w: WindowRecord, scale: DeriveScale): Derived {
  const q = deriveQuantities(w, scale);
  return {
    vrms: q.vrms,
    irms: q.irms,
    p: q.p,
    s: q.s,
    pf: q.pf,
    n: q.n,
    v_dc: q.v_dc,
    i_dc: q.i_dc,
    freq_hz: q.freq_hz,
    energy_wh: (scale.kv * scale.ki * Number(w.sum_vi)) / Q2_PER_LSB2 / scale.fs / 3600,
    energy_nwh: energyNanoWattHours(w.sum_vi, scale),
  };
}

/**
 * derive() without the window's own energy, for ingest: the store books energy from the epoch's running sum
 * (its exact BigInt conversion is the costliest part of derive, and ingest would throw the result away).
 */
export function deriveQuantities(w: WindowRecord, scale: DeriveScale): DerivedQuantities {
  validateScale(scale);
  const { kv, ki, fs } = scale;
  const count = w.samples;
  if (!Number.isInteger(count) || count <= 0) throw new RangeError(`window has ${count} samples; need ≥ 1`);
  // Each sum is converted to a double once (relative error ≤ 2^−53); the q factors are powers of two,
  // so dividing them out adds no rounding.
  const vrms = (kv * Math.sqrt(Number(w.sum_vv) / count)) / Q_PER_LSB;
  const irms = (ki * Math.sqrt(Number(w.sum_ii) / count)) / Q_PER_LSB;
  const p = (kv * ki * Number(w.sum_vi)) / (Q2_PER_LSB2 * count);
  const s = vrms * irms;
  return {
    vrms,
    irms,
    p,
    s,
    pf: s === 0 ? null : p / s,
    n: Math.sqrt(Math.max(0, s * s - p * p)),
    v_dc: (kv * Number(w.sum_v)) / (Q_PER_LSB * count),
    i_dc: (ki * Number(w.sum_i)) / (Q_PER_LSB * count),
    freq_hz: frequencyHz(w, fs),
  };
}

/**
 * (zc_count − 1) cycles between the first and last crossing, each placed by linear interpolation
 * between the sample before (prev < 0) and at (cur ≥ 0) the crossing: t = offset − 1 + prev/(prev − cur).
 */
export function frequencyHz(w: WindowRecord, fs: number): number | null {
  if (w.zc_count < 2 || (w.flags & WINDOW_FLAG.ZC_OVERFLOW) !== 0) return null;
  const first = crossingAt(w.zc_first_offset, w.zc_first_prev, w.zc_first_cur);
  const last = crossingAt(w.zc_last_offset, w.zc_last_prev, w.zc_last_cur);
  // A record whose crossing samples do not bracket zero is not from a conforming device.
  if (first === null || last === null || last <= first) return null;
  return ((w.zc_count - 1) * fs) / (last - first);
}

function crossingAt(offset: number, prev: number, cur: number): number | null {
  return prev < 0 && cur >= 0 ? offset - 1 + prev / (prev - cur) : null;
}

/** A finite double as an exact fraction num/den (den a power of two). */
export function exactFraction(x: number): { num: bigint; den: bigint } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const sign = bits >> 63n ? -1n : 1n;
  const biased = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & ((1n << 52n) - 1n);
  // Subnormals have no implicit bit and the exponent of the smallest normal.
  const mantissa = biased === 0 ? fraction : fraction | (1n << 52n);
  const exp = (biased === 0 ? 1 : biased) - 1075;
  return exp >= 0
    ? { num: sign * (mantissa << BigInt(exp)), den: 1n }
    : { num: sign * mantissa, den: 1n << BigInt(-exp) };
}

/** num/den rounded to the nearest integer, ties to even (den > 0). */
function divRoundHalfEven(num: bigint, den: bigint): bigint {
  let q = num / den; // truncates toward zero
  let r = num - q * den;
  if (r === 0n) return q;
  if (r < 0n) {
    q -= 1n;
    r += den;
  }
  // Now num = q·den + r with 0 < r < den.
  const twice = r << 1n;
  if (twice > den || (twice === den && (q & 1n) === 1n)) q += 1n;
  return q;
}

function gcd(a: bigint, b: bigint): bigint {
  if (a < 0n) a = -a;
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

/**
 * Energy of an exact Σ v·i (a window's sum_vi, or a difference of two energy snapshots, in q²·samples)
 * in integer nanowatt-hours: sumVi·kv·ki·10^9 / (16·fs·3600). kv, ki and fs are taken as the exact rationals their
 * doubles denote, the product is formed exactly in BigInt, and the result is rounded once to the
 * nearest nWh, ties to even. So converting a cumulative delta is off by at most 0.5 nWh, whereas adding
 * per-window conversions can be off by 0.5 nWh per window: convert sums of sum_vi, not sums of results.
 */
export function energyNanoWattHours(sumVi: bigint, scale: DeriveScale): bigint {
  let f = lastFactors;
  if (f === undefined || f.kv !== scale.kv || f.ki !== scale.ki || f.fs !== scale.fs) {
    validateScale(scale);
    const kv = exactFraction(scale.kv);
    const ki = exactFraction(scale.ki);
    const fs = exactFraction(scale.fs);
    const num = kv.num * ki.num * 1_000_000_000n * fs.den;
    const den = kv.den * ki.den * fs.num * 3600n * BigInt(Q2_PER_LSB2);
    // In lowest terms (the same rational, so the same rounding): smaller operands for every window's product
    // and division.
    const g = gcd(num, den);
    f = lastFactors = { kv: scale.kv, ki: scale.ki, fs: scale.fs, num: num / g, den: den / g };
  }
  return divRoundHalfEven(sumVi * f.num, f.den);
}

/**
 * The exact factors of the last scale converted. A host converts every window of a device with the same scale,
 * and deriving three exact fractions costs more per window than storing it (a NaN scale never matches, so it
 * is validated and rejected every time).
 */
let lastFactors: { kv: number; ki: number; fs: number; num: bigint; den: bigint } | undefined;
