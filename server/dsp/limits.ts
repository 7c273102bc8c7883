// What the host's arithmetic can hold, derived once from docs/dsp.md ("Limits of the host arithmetic"):
// the API schema, the store and the calibration push all check against these, so no value any interface
// accepts can overflow a stored integer or turn a derived quantity into Infinity or a subnormal.

import { exactFraction } from './derive.ts';

/** Longest window the device may emit (`max_samples` and `fixed_samples` are at most 2^24). */
export const MAX_WINDOW_SAMPLES = 2 ** 24;
/** Largest |y| of a calibrated sample, in q (`sat18`). */
export const MAX_ABS_SAMPLE_Q = 2 ** 17;
/** Largest |v·i| (and v², i²) of one sample, in q²: 2^17 · 2^17. */
export const MAX_ABS_PRODUCT_Q2 = 2n ** 34n;
export const INT64_MAX = (1n << 63n) - 1n;
export const INT64_MIN = -(1n << 63n);

/**
 * The stored energy counter (int64 nWh) must hold this long at the largest power the arithmetic can express
 * (|v·i| = 2^34 q² in every sample, both channels saturated): one Julian year, s.
 */
export const COUNTER_HORIZON_S = 31_557_600;

/**
 * Largest kv·ki, as the exact rational num/den: one sample books kv·ki·|v·i|·10⁹ / (16·3600·fs) nWh, so
 * COUNTER_HORIZON_S·fs samples book kv·ki·2^34·10⁹·COUNTER_HORIZON_S / 57 600 nWh, whatever fs; that must be
 * ≤ 2^63 − 1. (≈ 9.80·10⁻⁴: ±8192 LSB at unit gain spanning e.g. ±400 V and ±160 A.)
 */
const KVKI_MAX = { num: INT64_MAX * 57_600n, den: MAX_ABS_PRODUCT_Q2 * 1_000_000_000n * BigInt(COUNTER_HORIZON_S) };
/** KVKI_MAX rounded down to a double, for messages and the API's description. */
export const KVKI_MAX_NUMBER = largestDoubleAtMost(KVKI_MAX.num, KVKI_MAX.den);

/**
 * Smallest kv·ki: the smallest non-zero power a window can show, kv·ki·1 / (16·2^24) W (Σ v·i = 1 q² over the
 * longest window), must be a normal double (≥ 2^−1022), so kv·ki ≥ 2^−994.
 */
export const KVKI_MIN_LOG2 = -994;
/**
 * Each of kv, ki alone: the smallest non-zero DC value, k·1 / (4·2^24), must be normal (k ≥ 2^−996); the largest
 * value, k·2^15 (|y| ≤ 2^17 q = 2^15 LSB), summed sample-weighted over COUNTER_HORIZON_S (< 2^25 s) at the
 * highest rate the protocol can state (< 2^32 Hz), as the rollups do, must stay finite: k·2^72 < 2^1024, so
 * k ≤ 2^951.
 */
export const SCALE_MIN = 2 ** -996;
export const SCALE_MAX = 2 ** 951;

/**
 * Smallest sample rate: the longest window (2^24 samples) must not span more than COUNTER_HORIZON_S, or a single
 * window could overflow the counter; ≈ 0.53 Hz.
 */
export const MIN_SAMPLE_RATE_HZ = MAX_WINDOW_SAMPLES / COUNTER_HORIZON_S;

/** The rule on kv·ki in words, for the API's description. */
export const SCALE_PRODUCT_RULE = `kv·ki must be in [2^${KVKI_MIN_LOG2}, ${KVKI_MAX_NUMBER}] (422 otherwise)`;

/** A front-end scale or sample rate outside what the arithmetic can hold; the message gives the allowed range. */
export class ScaleRangeError extends RangeError {
  override readonly name = 'ScaleRangeError';
  readonly statusCode = 422;
}

/** Throws ScaleRangeError unless kv and ki (volts and amperes per ADC LSB) are within the limits above. */
export function checkFrontEndScale(kv: number, ki: number): void {
  checkScaleTerm('kv', kv);
  checkScaleTerm('ki', ki);
  const a = exactFraction(kv);
  const b = exactFraction(ki);
  const num = a.num * b.num;
  const den = a.den * b.den;
  if (num * KVKI_MAX.den > KVKI_MAX.num * den) {
    throw new ScaleRangeError(
      `kv·ki = ${kv * ki} is above ${KVKI_MAX_NUMBER}: the energy counter (int64 nWh) must hold a year at the largest ` +
        `power this scale can express; with kv = ${kv} choose ki ≤ ${KVKI_MAX_NUMBER / kv}`,
    );
  }
  if (num << BigInt(-KVKI_MIN_LOG2) < den) {
    throw new ScaleRangeError(`kv·ki = ${kv * ki} is below 2^${KVKI_MIN_LOG2}: powers would lose precision (kv·ki must be in [2^${KVKI_MIN_LOG2}, ${KVKI_MAX_NUMBER}])`);
  }
}

function checkScaleTerm(key: string, x: number): void {
  if (!(typeof x === 'number' && x >= SCALE_MIN && x <= SCALE_MAX)) {
    throw new ScaleRangeError(`${key} = ${String(x)} is outside [2^-996, 2^951] (volts or amperes per ADC LSB, > 0)`);
  }
}

/** Throws ScaleRangeError for a sample rate num/den below MIN_SAMPLE_RATE_HZ or not a positive rational. */
export function checkSampleRate(fsNum: number, fsDen: number): void {
  if (!Number.isSafeInteger(fsNum) || !Number.isSafeInteger(fsDen) || fsNum <= 0 || fsDen <= 0) {
    throw new ScaleRangeError(`sample rate must be a positive rational, got ${fsNum}/${fsDen}`);
  }
  // fsNum/fsDen ≥ 2^24 / COUNTER_HORIZON_S, exactly.
  if (BigInt(fsNum) * BigInt(COUNTER_HORIZON_S) < BigInt(MAX_WINDOW_SAMPLES) * BigInt(fsDen)) {
    throw new ScaleRangeError(`sample rate ${fsNum}/${fsDen} Hz is below ${MIN_SAMPLE_RATE_HZ} Hz: a window could span more than a year`);
  }
}

/** The largest double ≤ num/den (num, den > 0). */
function largestDoubleAtMost(num: bigint, den: bigint): number {
  let x = Number(num) / Number(den);
  for (;;) {
    const f = exactFraction(x);
    if (f.num * den <= num * f.den) return x;
    x = nextDown(x);
  }
}

function nextDown(x: number): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  view.setBigUint64(0, view.getBigUint64(0) - 1n);
  return view.getFloat64(0);
}
