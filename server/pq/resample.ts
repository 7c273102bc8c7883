// Band-limited resampling of the decimated stream at arbitrary instants (Kaiser-windowed sinc).
//
// Why this and not linear or cubic interpolation: the 50th harmonic of 61 Hz sits at 0.39·fs_d, where a
// cubic interpolator is off by percent; the stream is band-limited by the decimator's filter, so a
// windowed sinc reconstructs it to the window's ripple (about 4e-6 for β = 11). Measured: a lone tone at
// 0.38·fs_d (order 49 of 60 Hz) comes out of the harmonic analysis within 4e-7 of its amplitude. In the
// accuracy benchmark (server/pq/bench-accuracy.ts) 64 taps a side change nothing; β = 8 raises the
// error floor of the small harmonics about fivefold.

/** Input samples used on each side of an output instant. */
export const HALF_TAPS = 48;
const BETA = 11;
const TABLE_SIZE = 16_384;

/** Modified Bessel function of the first kind, order 0 (power series; converges fast for x ≤ 20). */
function besselI0(x: number): number {
  let sum = 1;
  let term = 1;
  const q = (x * x) / 4;
  for (let k = 1; k < 60; k++) {
    term *= q / (k * k);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return sum;
}

/** Kaiser window sampled on d = |offset| / HALF_TAPS ∈ [0, 1], one extra point for interpolation. */
const KAISER = ((): Float64Array => {
  const t = new Float64Array(TABLE_SIZE + 2);
  const norm = besselI0(BETA);
  for (let k = 0; k <= TABLE_SIZE; k++) {
    const d = k / TABLE_SIZE;
    t[k] = besselI0(BETA * Math.sqrt(Math.max(0, 1 - d * d))) / norm;
  }
  return t;
})();

function kaiser(offset: number): number {
  const pos = (Math.abs(offset) / HALF_TAPS) * TABLE_SIZE;
  const k = Math.floor(pos);
  if (k >= TABLE_SIZE) return 0;
  const f = pos - k;
  return KAISER[k]! + f * (KAISER[k + 1]! - KAISER[k]!);
}

/**
 * out[j] = x reconstructed at fractional input position `start + j·step`. Every position needs
 * HALF_TAPS input samples on each side: the caller guarantees them (RangeError otherwise).
 */
export function resampleAt(x: Float64Array, start: number, step: number, out: Float64Array): void {
  const last = start + (out.length - 1) * step;
  if (Math.floor(start) - HALF_TAPS + 1 < 0 || Math.floor(last) + HALF_TAPS >= x.length) {
    throw new RangeError(
      `resampling positions ${start.toFixed(2)} … ${last.toFixed(2)} need ${HALF_TAPS} samples of margin in 0 … ${x.length - 1}`,
    );
  }
  for (let j = 0; j < out.length; j++) {
    const u = start + j * step;
    const k0 = Math.floor(u);
    const frac = u - k0;
    if (frac === 0) {
      out[j] = x[k0]!;
      continue;
    }
    // sin(π(frac − m)) = (−1)^m sin(π·frac): one sine per output sample.
    const s = Math.sin(Math.PI * frac) / Math.PI;
    let acc = 0;
    for (let m = -HALF_TAPS + 1; m <= HALF_TAPS; m++) {
      const d = frac - m;
      const sign = (m & 1) === 0 ? 1 : -1;
      acc += x[k0 + m]! * ((sign * s) / d) * kaiser(d);
    }
    out[j] = acc;
  }
}
