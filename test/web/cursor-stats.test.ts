import { describe, expect, it } from 'vitest';
import { bucketStats, captureEnergyWh, sampleStats } from '../../web/cursor-stats.ts';
import { duration } from '../../web/cursor-views.ts';

describe('what the cursors measure', () => {
  it('takes mean, min, max and RMS of the samples between them, either way round, skipping nulls', () => {
    const t = [0, 1, 2, 3, 4, 5];
    const y = [9, 3, -4, null, 0, 100];
    expect(sampleStats(t, y, 1, 4)).toEqual({ n: 3, mean: -1 / 3, min: -4, max: 3, rms: Math.sqrt(25 / 3) });
    expect(sampleStats(t, y, 4, 1)).toEqual(sampleStats(t, y, 1, 4));
    expect(sampleStats(t, y, 3, 3)).toEqual({ n: 0, mean: null, min: null, max: null, rms: null });
  });

  it('takes the extremes of history buckets from their min and max, not their means', () => {
    const s = bucketStats([0, 10, 20], [5, 6, 7], [1, 2, 3], [9, 10, 11], 0, 15);
    expect(s).toMatchObject({ n: 2, mean: 5.5, min: 1, max: 10 });
  });

  it('integrates v·i over the pairs in [a, b)', () => {
    // 230 V × 2 A for 10 pairs of 1 ms: 4.6 J.
    const t = Array.from({ length: 20 }, (_, k) => k);
    const wh = captureEnergyWh(t, t.map(() => 230), t.map(() => 2), 5, 15, 1);
    expect(wh * 3600).toBeCloseTo(4.6, 12);
  });

  it('says spans as a person does', () => {
    expect(duration(850)).toBe('850 ms');
    expect(duration(12_500)).toBe('12.5 s');
    expect(duration(250_000)).toBe('4 min 10 s');
    expect(duration(7_500_000)).toBe('2 h 05 min');
    expect(duration(2_700_000)).toBe('45 min 0 s');
  });
});
