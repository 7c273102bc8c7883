// The host's capture-point judge against the table it shares with the gateware's reference
// (hdl/crabwatt/adc_timing.py, checked by hdl/tests/test_adc_timing.py).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { choose, judge } from '../../server/device/adc-judge.ts';

interface JudgeCase {
  name: string; read_delay: number; codes: [number, number][]; adc_errors: number;
  expect?: [number, number]; ok: boolean; reason: string;
}
interface ChooseCase { name: string; first_read_delay: number; passes: string; chosen: number | null; width: number }

const table = JSON.parse(readFileSync(new URL('../vectors/adc/judge.json', import.meta.url), 'utf8')) as {
  judge: JudgeCase[]; choose: ChooseCase[];
};

describe('ADC capture-point judge (test/vectors/adc/judge.json)', () => {
  it.each(table.judge.map((c) => [c.name, c] as const))('judge: %s', (_name, c) => {
    const v = judge(c.read_delay, c.codes, c.adc_errors, c.expect);
    expect({ ok: v.ok, reason: v.reason }).toEqual({ ok: c.ok, reason: c.reason });
  });

  it.each(table.choose.map((c) => [c.name, c] as const))('choose: %s', (_name, c) => {
    const verdicts = [...c.passes].map((bit, k) => ({ readDelay: c.first_read_delay + k, ok: bit === '1', reason: '' }));
    expect(choose(verdicts)).toEqual({ readDelay: c.chosen, width: c.width });
  });
});
