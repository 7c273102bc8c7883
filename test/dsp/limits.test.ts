// The limits of server/dsp/limits.ts checked against what they claim (docs/dsp.md "Limits of the host
// arithmetic"), computed here independently: exact BigInt energies, and the float quantities of derive().

import { describe, expect, it } from 'vitest';
import { deriveQuantities, energyNanoWattHours } from '../../server/dsp/derive.ts';
import {
  checkFrontEndScale,
  checkSampleRate,
  KVKI_MAX_NUMBER,
  ScaleRangeError,
  SCALE_MAX,
  SCALE_MIN,
} from '../../server/dsp/limits.ts';
import type { WindowRecord } from '../../server/dsp/model.ts';

const INT64_MAX = (1n << 63n) - 1n;
const YEAR_S = 31_557_600n;

function nextUp(x: number): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  view.setBigUint64(0, view.getBigUint64(0) + 1n);
  return view.getFloat64(0);
}

function window(over: Partial<WindowRecord>): WindowRecord {
  return {
    end_index: 1n << 24n, samples: 2 ** 24, sum_v: 0n, sum_i: 0n, sum_vv: 0n, sum_ii: 0n, sum_vi: 0n,
    min_v: 0, max_v: 0, min_i: 0, max_i: 0, zc_count: 0, zc_first_offset: 0, zc_first_prev: 0, zc_first_cur: 0,
    zc_last_offset: 0, zc_last_prev: 0, zc_last_cur: 0, flags: 0, config_seq: 0, ...over,
  };
}

describe('limits of the host arithmetic', () => {
  it('kv·ki at its largest books a saturated year within int64, one ulp more does not', () => {
    const fs = 4_000_000;
    const yearRaw = (1n << 34n) * YEAR_S * BigInt(fs);
    const ki = 2 ** -8;
    const kv = KVKI_MAX_NUMBER / ki;
    expect(energyNanoWattHours(yearRaw, { kv, ki, fs }) <= INT64_MAX).toBe(true);
    expect(() => checkFrontEndScale(kv, ki)).not.toThrow();
    // The exact product one ulp up books more than int64 holds (before rounding), and is refused.
    const up = nextUp(kv);
    expect(energyNanoWattHours(yearRaw, { kv: up, ki, fs }) > INT64_MAX).toBe(true);
    expect(() => checkFrontEndScale(up, ki)).toThrow(ScaleRangeError);
    expect(() => checkFrontEndScale(up, ki)).toThrow(/kv·ki .* is above 0\.000979/);
  });

  it('refuses the issue’s kv = ki = 1e6 and accepts the shipped defaults', () => {
    expect(() => checkFrontEndScale(1e6, 1e6)).toThrow(ScaleRangeError);
    expect(() => checkFrontEndScale(400 / 8192, 32 / 8192)).not.toThrow();
    expect(() => checkFrontEndScale(400 / 8192, 40 / 8192)).not.toThrow();
  });

  it('keeps every derived float normal and finite at the bounds', () => {
    // Smallest product, smallest sums: p, s normal.
    const tiny = deriveQuantities(window({ sum_vi: 1n, sum_vv: 1n, sum_ii: 1n, sum_v: 1n, sum_i: 1n }), { kv: 2 ** -497, ki: 2 ** -497, fs: 4e6 });
    expect(tiny.p).toBeGreaterThanOrEqual(2 ** -1022);
    expect(tiny.s).toBeGreaterThanOrEqual(2 ** -1022);
    const dc = deriveQuantities(window({ sum_v: 1n, sum_vv: 1n }), { kv: SCALE_MIN, ki: 4, fs: 4e6 });
    expect(dc.v_dc).toBeGreaterThanOrEqual(2 ** -1022);
    expect(() => checkFrontEndScale(2 ** -497, 2 ** -497)).not.toThrow();
    expect(() => checkFrontEndScale(2 ** -497, 2 ** -498)).toThrow(/below 2\^-994/);
    // Largest single scale: the largest value summed over a year at 2^32 Hz stays finite.
    const big = deriveQuantities(window({ samples: 1, end_index: 1n, sum_vv: 1n << 34n, sum_v: 1n << 17n }), { kv: SCALE_MAX, ki: SCALE_MIN, fs: 4e6 });
    expect(Number.isFinite(big.vrms * 2 ** 32 * 2 ** 25)).toBe(true);
    expect(Number.isFinite(big.v_dc * 2 ** 32 * 2 ** 25)).toBe(true);
    expect(() => checkFrontEndScale(SCALE_MAX, SCALE_MIN)).not.toThrow();
    expect(() => checkFrontEndScale(nextUp(SCALE_MAX), SCALE_MIN)).toThrow(/outside/);
  });

  it.each([0, -1, -0, NaN, Infinity, 5e-324])('refuses kv = %s', (kv) => {
    expect(() => checkFrontEndScale(kv, 0.004)).toThrow(ScaleRangeError);
  });

  it('bounds the sample rate so that the longest window spans at most the year', () => {
    expect(() => checkSampleRate(4_000_000, 1)).not.toThrow();
    // 2^24 samples in exactly one year is allowed; a slower rate is not.
    expect(() => checkSampleRate(2 ** 24, Number(YEAR_S))).not.toThrow();
    expect(() => checkSampleRate(2 ** 24 - 1, Number(YEAR_S))).toThrow(/below 0\.53/);
    expect(() => checkSampleRate(0, 1)).toThrow(/positive rational/);
  });
});
