import { describe, expect, it } from 'vitest';
import {
  CAPTURE_PAIRS, TRIGGER_HYSTERESIS_LSB, captureTimesMs, describeCapture, parseSpan, planCapture,
} from '../../web/capture.ts';
import { captureDecimation } from '../../server/api/live-captures.ts';

describe('the waveform view asks for a few cycles', () => {
  it('parses the span menu and refuses anything else', () => {
    expect(parseSpan('cycles:4')).toEqual({ kind: 'cycles', cycles: 4 });
    expect(parseSpan('ms:1000')).toEqual({ kind: 'ms', ms: 1000 });
    expect(parseSpan('full')).toEqual({ kind: 'full' });
    for (const bad of ['', 'cycles:', 'cycles:0', 'ms:-3', 'weeks:2', 'cycles:4;drop']) expect(() => parseSpan(bad)).toThrow(/capture span/);
  });

  it('turns cycles into a duration at the measured frequency, 20 ms a cycle before one is known', () => {
    const at60 = planCapture({ kind: 'cycles', cycles: 4 }, 60, 4e6);
    expect(at60.body).toMatchObject({ pairs: CAPTURE_PAIRS, trigger: 'v_rising', level: 0, hysteresis: TRIGGER_HYSTERESIS_LSB });
    expect(at60.body.duration_ms).toBeCloseTo(66.667, 3);
    expect(at60.body).not.toHaveProperty('decimation');
    expect(at60.label).toBe('4 cycles at 60.00 Hz');
    const unknown = planCapture({ kind: 'cycles', cycles: 4 }, null, 4e6);
    expect(unknown.body.duration_ms).toBe(80);
    expect(unknown.label).toMatch(/no frequency yet: 80 ms/);
    expect(planCapture({ kind: 'full' }, 50, 4e6).body).toMatchObject({ decimation: 1 });
    expect(planCapture({ kind: 'full' }, 50, 4e6).spanMs).toBeCloseTo(1.024, 6);
    expect(planCapture({ kind: 'ms', ms: 1000 }, 50, 4e6).body.duration_ms).toBe(1000);
    // The pretrigger stays inside the capture, as the server and device demand.
    expect(at60.body.pretrigger).toBeGreaterThan(0);
    expect(at60.body.pretrigger).toBeLessThan(at60.body.pairs);
  });

  it('the server turns the default request into D = 79 at 4 Msps, covering the 4 cycles', () => {
    const { body } = planCapture({ kind: 'cycles', cycles: 4 }, 50, 4e6);
    const d = captureDecimation({ ...body, durationMs: body.duration_ms! }, 4e6, null);
    expect(d).toBe(79);
    expect((body.pairs * d) / 4e6).toBeGreaterThanOrEqual(0.08);
    expect((body.pairs * (d - 1)) / 4e6).toBeLessThan(0.08);
  });

  it('puts pair k at (k − trigger_offset)·D / fs from the trigger', () => {
    const c = { id: 3, v: [0, 0, 0, 0, 0], decimation: 64, sample_rate_hz: 4e6, trigger_offset: 2 };
    expect(captureTimesMs(c)).toEqual([-0.032, -0.016, 0, 0.016, 0.032]);
    expect(captureTimesMs({ ...c, decimation: 1 })).toEqual([-0.0005, -0.00025, 0, 0.00025, 0.0005]);
    expect(describeCapture({ ...c, v: new Array(4096).fill(0), decimation: 79 }, '4 cycles at 50.00 Hz'))
      .toBe('capture 3: 4096 pairs over 80.9 ms (4 cycles at 50.00 Hz; 1 sample in 79, 50.63 kS/s)');
    expect(describeCapture({ ...c, v: new Array(4096).fill(0), decimation: 1 }, 'full rate'))
      .toBe('capture 3: 4096 pairs over 1.02 ms (full rate; every sample, 4 MS/s)');
  });
});
