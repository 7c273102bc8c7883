// The ADC capture-point judge of hdl/crabwatt/adc_timing.py (the reference: what each wrong capture
// point looks like is explained there), ported for `crabwatt bringup`. Both sides must agree on
// test/vectors/adc/judge.json: hdl/tests/test_adc_timing.py and test/device/adc-judge.test.ts check it.

export const MID_SCALE = 8192;
/** Offset the inputs may show when shorted (front end and ADC midscale error), LSB; far below a one-bit shift's 4096. */
export const OFFSET_TOLERANCE_LSB = 64;
/** Peak-to-peak noise a steady reading may show with shorted inputs, LSB. */
export const NOISE_TOLERANCE_LSB = 32;

export interface Verdict {
  readonly readDelay: number;
  readonly ok: boolean;
  readonly reason: string;
}

/** Python's `f"{x:.0f}"`: nearest integer, ties to even (toFixed would round ties away from zero). */
function formatRounded(x: number): string {
  const floor = Math.floor(x);
  const diff = x - floor;
  const n = diff > 0.5 || (diff === 0.5 && floor % 2 !== 0) ? floor + 1 : floor;
  return String(n === 0 ? 0 : n);
}

/**
 * Judges one READ_DELAY from the raw code pairs [cv, ci] read there with the inputs at `expect`
 * (shorted: mid-scale) and the leading-zero errors counted meanwhile.
 */
export function judge(
  readDelay: number,
  codes: readonly (readonly [number, number])[],
  adcErrors: number,
  expect: readonly [number, number] = [MID_SCALE, MID_SCALE],
): Verdict {
  const fail = (reason: string): Verdict => ({ readDelay, ok: false, reason });
  if (codes.length === 0) return fail('no samples');
  if (adcErrors) return fail(`leading zeros: ${adcErrors} bad frames`);
  for (const [channel, name] of [[0, 'voltage'], [1, 'current']] as const) {
    const values = codes.map((c) => c[channel]);
    const spread = Math.max(...values) - Math.min(...values);
    if (spread > NOISE_TOLERANCE_LSB) return fail(`unstable: ${name} codes span ${spread} LSB`);
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    if (Math.abs(mean - expect[channel]) > OFFSET_TOLERANCE_LSB) {
      return fail(`off mid-scale: ${name} reads ${formatRounded(mean)}, expected ${expect[channel]}`);
    }
  }
  return { readDelay, ok: true, reason: '' };
}

/**
 * The middle of the widest run of consecutive passing settings (the first of equal runs; the lower
 * middle of an even run), with the run's length; null and 0 when nothing passed. `verdicts` in
 * READ_DELAY order, one scan step apart.
 */
export function choose(verdicts: readonly Verdict[]): { readDelay: number | null; width: number } {
  let best: [number, number] | null = null;
  let bestLength = 0;
  let runStart: number | null = null;
  for (let k = 0; k <= verdicts.length; k++) {
    const ok = verdicts[k]?.ok ?? false;
    if (ok && runStart === null) runStart = k;
    else if (!ok && runStart !== null) {
      if (k - runStart > bestLength) [best, bestLength] = [[runStart, k - 1], k - runStart];
      runStart = null;
    }
  }
  if (best === null) return { readDelay: null, width: 0 };
  return { readDelay: verdicts[Math.floor((best[0] + best[1]) / 2)]!.readDelay, width: bestLength };
}
