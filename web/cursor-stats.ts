// What the two cursors measure between them (cursors.ts): pure functions of the chart's data, so the browser
// shows what these compute and test/web/cursor-stats.test.ts checks them without one.

export interface Stats {
  /** Points between the cursors that carried a value. */
  n: number;
  mean: number | null;
  min: number | null;
  max: number | null;
  rms: number | null;
}

const EMPTY: Stats = { n: 0, mean: null, min: null, max: null, rms: null };

/** Of the samples whose time is in [a, b] (a ≤ b after ordering), nulls skipped: equally spaced samples, plain means. */
export function sampleStats(t: readonly number[], y: readonly (number | null)[], a: number, b: number): Stats {
  const [lo, hi] = a <= b ? [a, b] : [b, a];
  let n = 0;
  let sum = 0;
  let squares = 0;
  let min = Infinity;
  let max = -Infinity;
  for (let k = 0; k < t.length; k++) {
    const v = y[k];
    if (t[k]! < lo || t[k]! > hi || v === null || v === undefined) continue;
    n++;
    sum += v;
    squares += v * v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return n === 0 ? EMPTY : { n, mean: sum / n, min, max, rms: Math.sqrt(squares / n) };
}

/**
 * Of history buckets starting in [a, b): the mean of the bucket means (buckets are equally long), the smallest
 * minimum and largest maximum (the extremes inside each bucket, not only its mean), and the RMS of the means.
 */
export function bucketStats(
  t: readonly number[], mean: readonly (number | null)[], min: readonly (number | null)[], max: readonly (number | null)[], a: number, b: number,
): Stats {
  const s = sampleStats(t, mean, a, b);
  if (s.n === 0) return s;
  const lows = sampleStats(t, min, a, b);
  const highs = sampleStats(t, max, a, b);
  return { ...s, min: lows.min, max: highs.max };
}

/** Energy in Wh of a capture between two times (ms): Σ v·i over the pairs in [a, b), each standing for dtMs. */
export function captureEnergyWh(tMs: readonly number[], v: readonly number[], i: readonly number[], a: number, b: number, dtMs: number): number {
  const [lo, hi] = a <= b ? [a, b] : [b, a];
  let joules = 0;
  for (let k = 0; k < tMs.length; k++) if (tMs[k]! >= lo && tMs[k]! < hi) joules += v[k]! * i[k]! * (dtMs / 1000);
  return joules / 3600;
}
