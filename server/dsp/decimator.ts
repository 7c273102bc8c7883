/**
 * The decimated waveform stream (docs/dsp.md, "Decimated waveform"): the calibrated pairs (v, i) at
 * fs = 4 Msps filtered and decimated by 512 to 7812.5 Hz, bit-exact with the gateware
 * (hdl/crabwatt/dsp/decimator.py). Stage 1 is a CIC of order 5 decimating by 128 (exact integers,
 * gain 2^35, rounded to q); stage 2 a symmetric 127-tap FIR decimating by 4 (gain 2^19, rounded to q).
 *
 * Output j represents the 4 Msps sample index `n_j = DECIMATED_FIRST_INDEX + DECIMATION·j`: the
 * filter's integer group delay is taken out by that definition, and `decimatorResponse` gives what is
 * left (the exact amplitude and a half-sample delay), so the host can correct each harmonic.
 */
/** The ADC's sample rate (docs/dsp.md, Sampling), the rate the stream is decimated from. */
export const FS_INPUT_HZ = 4_000_000;
export const CIC_ORDER = 5;
export const CIC_DECIMATION = 128;
/** log2(CIC_DECIMATION^CIC_ORDER): the CIC's DC gain is exactly 2^35. */
export const CIC_SHIFT = 35;
export const FIR_DECIMATION = 4;
/** The FIR taps sum to exactly 2^19. */
export const FIR_SHIFT = 19;
export const DECIMATION = CIC_DECIMATION * FIR_DECIMATION;
export const FS_DECIMATED_HZ = FS_INPUT_HZ / DECIMATION;

/** Taps h[0 … 63] of the 127-tap FIR; h[126 − k] = h[k] (symmetric), Σ h = 2^19 exactly. */
export const FIR_HALF_TAPS: readonly number[] = Object.freeze([
  -1, -2, -2, 0, 5, 11, 10, 0, -19, -34, -31, 0, 49, 86, 74, 0, -110, -186, -156, 1, 219, 362, 298, -1,
  -401, -652, -528, 2, 689, 1103, 881, -2, -1122, -1778, -1406, 3, 1757, 2762, 2168, -4, -2672, -4179,
  -3266, 5, 3999, 6246, 4880, -6, -5995, -9405, -7397, 7, 9279, 14798, 11891, -8, -15902, -26641,
  -22900, 8, 38920, 83045, 117859, 131066,
]);
export const FIR_LENGTH = 2 * FIR_HALF_TAPS.length - 1;
export const FIR_TAPS: readonly number[] = Object.freeze(
  Array.from({ length: FIR_LENGTH }, (_, k) => FIR_HALF_TAPS[Math.min(k, FIR_LENGTH - 1 - k)]!),
);

/** Length of the CIC's impulse response in input samples: 5 boxcars of 128 convolved. */
const CIC_LENGTH = CIC_ORDER * (CIC_DECIMATION - 1) + 1;
/**
 * Output j is formed when the last input it contains, `n_last = DECIMATION·(j + FIRST_OUTPUT_CIC/4) + 511`,
 * has arrived; it represents `n_last − DECIMATOR_DELAY_SAMPLES`. The whole filter is symmetric about
 * `n_last − 8381.5` (CIC 317.5 + FIR 63·128), so the integer delay is 8381 and half a sample remains.
 */
export const DECIMATOR_DELAY_SAMPLES = (CIC_ORDER * (CIC_DECIMATION - 1) - 1) / 2 + ((FIR_LENGTH - 1) / 2) * CIC_DECIMATION;
/** The CIC output (m, counted from 0) at which the first stream sample is emitted: the first with n_j ≥ 0. */
export const FIRST_OUTPUT_CIC = 67;
/** n_0: the 4 Msps index the first stream sample represents (later ones follow every DECIMATION). */
export const DECIMATED_FIRST_INDEX = CIC_DECIMATION * FIRST_OUTPUT_CIC + CIC_DECIMATION - 1 - DECIMATOR_DELAY_SAMPLES;
/** Stream samples are signed 19-bit q: |y| ≤ 2^17 · Σ|h| / 2^19 < 2^18. */
export const DECIMATED_BITS = 19;

/** The CIC as the equivalent direct-form FIR (integer taps, Σ = 2^35): exact in float64 (|Σ| ≤ 2^52). */
const CIC_TAPS: Float64Array = (() => {
  let taps = [1];
  for (let s = 0; s < CIC_ORDER; s++) {
    const next = new Array<number>(taps.length + CIC_DECIMATION - 1).fill(0);
    for (let a = 0; a < taps.length; a++) for (let b = 0; b < CIC_DECIMATION; b++) next[a + b]! += taps[a]!;
    taps = next;
  }
  return Float64Array.from(taps);
})();

export interface DecimatedBlock {
  /** n_j of v[0]/i[0]; when the block is empty, that of the next sample to come. */
  firstIndex: bigint;
  v: Int32Array;
  i: Int32Array;
}

const CIC_HIST = 128; // ≥ FIR_LENGTH, a power of two for the ring mask
const KEEP = CIC_LENGTH - 1; // inputs before a block that a CIC output in it can still need

/**
 * The bit-exact model. Feed it the calibrated pairs (q, sat18) of samples 0, 1, … in blocks; each call
 * returns the stream samples completed by that block. Cost per input sample: about 5 multiply-adds per
 * channel (the CIC in direct form, evaluated only at the decimated instants, over a contiguous buffer)
 * plus the FIR every 512 samples.
 */
export class Decimator {
  /** The last KEEP inputs (zeros before sample 0), then the current block. */
  private bufV = new Float64Array(KEEP + 4096);
  private bufI = new Float64Array(KEEP + 4096);
  private readonly cicV = new Float64Array(CIC_HIST);
  private readonly cicI = new Float64Array(CIC_HIST);
  /** Input samples seen so far. */
  private n = 0;
  /** CIC outputs formed so far. */
  private m = 0;
  private emitted = 0;

  /** n_j of the next stream sample to be emitted. */
  get nextIndex(): bigint {
    return BigInt(DECIMATED_FIRST_INDEX) + BigInt(DECIMATION) * BigInt(this.emitted);
  }

  push(v: Int32Array, i: Int32Array, count: number = v.length): DecimatedBlock {
    const firstIndex = this.nextIndex;
    if (this.bufV.length < KEEP + count) {
      const grown = KEEP + Math.max(count, 2 * (this.bufV.length - KEEP));
      for (const key of ['bufV', 'bufI'] as const) {
        const next = new Float64Array(grown);
        next.set(this[key].subarray(0, KEEP));
        this[key] = next;
      }
    }
    const bufV = this.bufV;
    const bufI = this.bufI;
    bufV.set(v.subarray(0, count), KEEP);
    bufI.set(i.subarray(0, count), KEEP);
    const outV: number[] = [];
    const outI: number[] = [];
    // A CIC output is formed after each input n with n mod 128 = 127; k is that input's place in the block.
    for (let k = (CIC_DECIMATION - 1 - (this.n % CIC_DECIMATION)); k < count; k += CIC_DECIMATION) {
      // buf[k … k + KEEP] are inputs n − KEEP … n: the CIC's taps are symmetric, so no reversal.
      const cpos = this.m & (CIC_HIST - 1);
      // Both channels in one pass over the taps; every partial sum is an integer ≤ 2^52: exact.
      let accV = 0;
      let accI = 0;
      for (let t = 0; t < CIC_LENGTH; t++) {
        const g = CIC_TAPS[t]!;
        accV += g * bufV[k + t]!;
        accI += g * bufI[k + t]!;
      }
      this.cicV[cpos] = cicRound(accV);
      this.cicI[cpos] = cicRound(accI);
      this.m++;
      if (this.m >= FIRST_OUTPUT_CIC + 1 && (this.m - 1 - FIRST_OUTPUT_CIC) % FIR_DECIMATION === 0) {
        outV.push(firRound(ringDot(FIR_TAPS_F64, this.cicV, cpos)));
        outI.push(firRound(ringDot(FIR_TAPS_F64, this.cicI, cpos)));
        this.emitted++;
      }
    }
    bufV.copyWithin(0, count, count + KEEP);
    bufI.copyWithin(0, count, count + KEEP);
    this.n += count;
    return { firstIndex, v: Int32Array.from(outV), i: Int32Array.from(outI) };
  }
}

const FIR_TAPS_F64 = Float64Array.from(FIR_TAPS);

/** Σ taps[t]·ring[newest − t] over the CIC outputs (≤ 2^37 in magnitude: exact). */
function ringDot(taps: Float64Array, ring: Float64Array, newest: number): number {
  let acc = 0;
  for (let t = 0; t < taps.length; t++) acc += taps[t]! * ring[(newest - t) & (CIC_HIST - 1)]!;
  return acc;
}

function cicRound(x: number): number {
  return Math.floor((x + 2 ** (CIC_SHIFT - 1)) / 2 ** CIC_SHIFT);
}

function firRound(x: number): number {
  return Math.floor((x + 2 ** (FIR_SHIFT - 1)) / 2 ** FIR_SHIFT);
}

/**
 * The exact frequency response of the defined arithmetic (without its roundings) at fHz, relative to
 * the index convention: a tone `x[n] = cos(2π·f·n/fs + φ)` comes out as
 * `|H|·cos(2π·f·n_j/fs + φ + arg H)` with `H = re + j·im`. The half-sample delay left over by the
 * integer DECIMATOR_DELAY_SAMPLES is in arg H. Divide a measured phasor by H to correct it.
 */
export function decimatorResponse(fHz: number): { re: number; im: number } {
  const w = (2 * Math.PI * fHz) / FS_INPUT_HZ;
  // The 128-sample boxcar, symmetric about 63.5 (summed rather than sin/sin: no 0/0 at the nulls).
  let box = 0;
  for (let k = 0; k < CIC_DECIMATION; k++) box += Math.cos(w * (k - (CIC_DECIMATION - 1) / 2));
  box /= CIC_DECIMATION;
  const centre = (FIR_LENGTH - 1) / 2;
  let fir = 0;
  for (let k = 0; k < FIR_LENGTH; k++) fir += FIR_TAPS[k]! * Math.cos(w * CIC_DECIMATION * (k - centre));
  fir /= 2 ** FIR_SHIFT;
  const amplitude = box ** CIC_ORDER * fir;
  const residualDelay = (CIC_LENGTH - 1) / 2 + centre * CIC_DECIMATION - DECIMATOR_DELAY_SAMPLES;
  return { re: amplitude * Math.cos(w * residualDelay), im: -amplitude * Math.sin(w * residualDelay) };
}
