import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderVectors, windowToJson, type VectorFile } from '../../server/dsp/vectors.ts';
import { literalModel } from './literal-model.ts';

const DIR = join(import.meta.dirname, '..', 'vectors');

describe('test/vectors', () => {
  const rendered = renderVectors();
  const committed = readdirSync(DIR).filter((f) => f.endsWith('.json')).sort();

  it('has exactly the generated files (run `crabwatt vectors` after changing the model)', () => {
    expect(committed).toEqual([...rendered.keys()].sort());
    expect(committed.length).toBeGreaterThanOrEqual(6);
  });

  for (const [name, text] of rendered) {
    it(`${name} is byte-identical to what the model generates`, () => {
      expect(readFileSync(join(DIR, name), 'utf8')).toBe(text);
    });

    it(`${name} agrees with the literal BigInt transcription of docs/dsp.md`, () => {
      const v = JSON.parse(readFileSync(join(DIR, name), 'utf8')) as VectorFile;
      expect(v.stimulus.cv.length).toBe(v.expected.sample_count);
      expect(v.stimulus.ci.length).toBe(v.expected.sample_count);
      const lit = literalModel(v.stimulus.cv, v.stimulus.ci, v.config, v.commits);
      expect(v.expected.windows).toEqual(lit.windows.map(windowToJson));
      expect(v.expected.energies).toEqual(lit.energies.map(String));
      expect(v.expected.energy_final).toBe(lit.energyFinal.toString());
    });

    it(`${name} tiles its samples and its energies add up`, () => {
      const v = JSON.parse(text) as VectorFile;
      let start = 0n;
      let energy = 0n;
      for (const [k, w] of v.expected.windows.entries()) {
        expect(BigInt(w.end_index) - BigInt(w.samples)).toBe(start);
        expect(w.samples).toBeGreaterThan(0);
        start = BigInt(w.end_index);
        energy += BigInt(w.sum_vi);
        expect(v.expected.energies[k]).toBe(energy.toString());
      }
      expect(start).toBeLessThanOrEqual(BigInt(v.expected.sample_count));
      if (start === BigInt(v.expected.sample_count)) expect(v.expected.energy_final).toBe(energy.toString());
    });
  }
});

describe('test/vectors gain-step', () => {
  it('keeps a gain step of 1/16384: whole-cycle sums after the commit grow by the gain ratio', () => {
    const v = JSON.parse(renderVectors().get('gain-step.json')!) as VectorFile;
    const whole = v.expected.windows.filter((w) => w.flags === 0);
    const before = whole.filter((w) => w.config_seq === 0);
    const after = whole.filter((w) => w.config_seq === 1);
    expect(before.length).toBeGreaterThanOrEqual(3);
    expect(after.length).toBeGreaterThanOrEqual(3);
    // Identical codes in every cycle: the windows of one configuration are identical too.
    for (const group of [before, after]) {
      for (const w of group) expect({ ...w, end_index: '' }).toEqual({ ...group[0]!, end_index: '' });
    }
    const ppm = (x: string, y: string): number => (Number(x) / Number(y) - 1) * 1e6;
    const step = 1e6 / 16384;
    // The correction is 4·x0/16384 q per sample, rounded to a whole q: a few ppm of pattern remain
    // (with 1-LSB samples both ratios were exactly 0).
    expect(Math.abs(ppm(after[0]!.sum_vv, before[0]!.sum_vv) - 2 * step)).toBeLessThan(8);
    expect(Math.abs(ppm(after[0]!.sum_vi, before[0]!.sum_vi) - step)).toBeLessThan(4);
    expect(after[0]!.sum_ii).toBe(before[0]!.sum_ii);
  });
});

describe('test/vectors coverage', () => {
  it('exercises every window flag but ZC_OVERFLOW, both modes, both phase signs and commits', () => {
    const files = [...renderVectors().values()].map((t) => JSON.parse(t) as VectorFile);
    const flags = files.flatMap((v) => v.expected.windows.map((w) => w.flags)).reduce((a, f) => a | f, 0);
    expect(flags).toBe(0x7f);
    const configs = files.flatMap((v) => [v.config, ...v.commits.map((c) => c.config)]);
    expect(new Set(configs.map((c) => c.mode))).toEqual(new Set([0, 1]));
    expect(configs.some((c) => c.phase > 0 && c.phase % 65536 !== 0)).toBe(true);
    expect(configs.some((c) => c.phase < 0 && -c.phase % 65536 !== 0)).toBe(true);
    expect(files.some((v) => v.commits.some((c) => c.at_sample === v.expected.sample_count))).toBe(true);
    for (const v of files) {
      expect(v.expected.sample_count).toBeGreaterThanOrEqual(2000);
      expect(v.expected.sample_count).toBeLessThanOrEqual(20_000);
    }
  });
});
