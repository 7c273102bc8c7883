import { describe, expect, it } from 'vitest';
import { measureSimSpeed } from '../../server/sim/bench.ts';

describe('measureSimSpeed', () => {
  it('reports a consistent figure for a short run (the speed itself is measured, not asserted)', () => {
    const r = measureSimSpeed({ simulatedSeconds: 0.5, warmupSeconds: 0.1, scenario: 'dc' });
    expect(r.scenario).toBe('dc');
    expect(r.simulated_s).toBe(0.5);
    expect(r.wall_s).toBeGreaterThan(0);
    expect(r.cpu_s).toBeGreaterThan(0);
    expect(r.samples_per_s).toBeCloseTo(0.5 * 4_000_000 / r.cpu_s, 6);
    expect(r.wall_samples_per_s).toBeCloseTo(0.5 * 4_000_000 / r.wall_s, 6);
    expect(r.realtime_factor).toBeCloseTo(r.samples_per_s / 4_000_000, 9);
    // 10 FIXED windows a second, each with its energy frame.
    expect(r.frames).toBeGreaterThanOrEqual(10);
  });

  it('rejects a non-positive duration', () => {
    expect(() => measureSimSpeed({ simulatedSeconds: 0 })).toThrow(RangeError);
  });
});
