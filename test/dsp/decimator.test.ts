import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CIC_DECIMATION, CIC_ORDER, CIC_SHIFT, DECIMATED_FIRST_INDEX, DECIMATION, Decimator, FIR_DECIMATION, FIR_SHIFT,
  FIR_TAPS, FS_DECIMATED_HZ, FS_INPUT_HZ, decimatorResponse,
} from '../../server/dsp/decimator.ts';
import { renderDecimatorVectors, type DecimatorVectorFile } from '../../server/dsp/decimator-vectors.ts';
import { Xorshift32 } from '../../server/dsp/vectors.ts';

const DIR = join(import.meta.dirname, '..', 'vectors', 'decimator');
const W = 53n; // integrator width of docs/dsp.md: 18 + 35 bits, wrapping
const MASK = (1n << W) - 1n;
const wrap = (x: bigint): bigint => {
  const u = x & MASK;
  return u >= 1n << (W - 1n) ? u - (1n << W) : u;
};

/**
 * docs/dsp.md "Decimated waveform" transcribed literally: wrapping integrators at 4 Msps, combs at
 * fs/128, the rounding to q, the FIR at fs/128 evaluated every 4th CIC output from m = 67 on.
 */
function literalDecimator(v: number[], i: number[]): { v: number[]; i: number[] } {
  const out = { v: [] as number[], i: [] as number[] };
  const chans = [v, i].map((x, c) => ({ x, out: c === 0 ? out.v : out.i, integ: Array<bigint>(CIC_ORDER).fill(0n),
    comb: Array<bigint>(CIC_ORDER).fill(0n), cic: [] as bigint[] }));
  for (let n = 0; n < v.length; n++) {
    for (const ch of chans) {
      let acc = BigInt(ch.x[n]!);
      for (let s = 0; s < CIC_ORDER; s++) acc = ch.integ[s] = wrap(ch.integ[s]! + acc);
      if (n % CIC_DECIMATION !== CIC_DECIMATION - 1) continue;
      let y = ch.integ[CIC_ORDER - 1]!;
      for (let s = 0; s < CIC_ORDER; s++) {
        const d = wrap(y - ch.comb[s]!);
        ch.comb[s] = y;
        y = d;
      }
      ch.cic.push((y + (1n << BigInt(CIC_SHIFT - 1))) >> BigInt(CIC_SHIFT));
      const m = ch.cic.length - 1;
      if (m < 67 || (m - 67) % FIR_DECIMATION !== 0) continue;
      let a = 0n;
      for (let k = 0; k < FIR_TAPS.length; k++) a += BigInt(FIR_TAPS[k]!) * (m - k >= 0 ? ch.cic[m - k]! : 0n);
      ch.out.push(Number((a + (1n << BigInt(FIR_SHIFT - 1))) >> BigInt(FIR_SHIFT)));
    }
  }
  return out;
}

describe('decimator (docs/dsp.md, Decimated waveform)', () => {
  it('has the contract constants', () => {
    expect(DECIMATION).toBe(512);
    expect(FS_DECIMATED_HZ).toBe(7812.5);
    expect(FIR_TAPS.reduce((a, b) => a + b, 0)).toBe(2 ** FIR_SHIFT);
    expect(CIC_DECIMATION ** CIC_ORDER).toBe(2 ** CIC_SHIFT);
  });

  it('the committed vectors are what the model generates and agree with the literal transcription', () => {
    const rendered = renderDecimatorVectors();
    expect(readdirSync(DIR).filter((f) => f.endsWith('.json')).sort()).toEqual([...rendered.keys()].sort());
    for (const [name, text] of rendered) {
      expect(readFileSync(join(DIR, name), 'utf8')).toBe(text);
      const file = JSON.parse(text) as DecimatorVectorFile;
      const lit = literalDecimator(file.stimulus.v, file.stimulus.i);
      expect(file.expected.v).toEqual(lit.v);
      expect(file.expected.i).toEqual(lit.i);
      expect(file.expected.v.length).toBe(32);
    }
  });

  it('the model agrees with the literal transcription on random input in random blocks', () => {
    const rng = new Xorshift32(77);
    const count = 30 * DECIMATION + 123;
    const v = Int32Array.from({ length: count }, () => rng.int(131071));
    const i = Int32Array.from({ length: count }, (_, n) => (n % 5000 < 2500 ? -131072 : 131071));
    const d = new Decimator();
    const got = { v: [] as number[], i: [] as number[] };
    for (let at = 0; at < count;) {
      const len = Math.min(count - at, rng.nextU32() % 2000);
      const b = d.push(v.subarray(at, at + len), i.subarray(at, at + len));
      expect(b.firstIndex).toBe(BigInt(DECIMATED_FIRST_INDEX + DECIMATION * got.v.length));
      got.v.push(...b.v);
      got.i.push(...b.i);
      at += len;
    }
    expect(got).toEqual(literalDecimator(Array.from(v), Array.from(i)));
  });

  it('has DC gain exactly 1 once the filter is full, at both rails', () => {
    for (const c of [-131072, 131071, 12345]) {
      const out = new Decimator().push(new Int32Array(40 * DECIMATION).fill(c), new Int32Array(40 * DECIMATION));
      expect([...out.v.subarray(17)].every((y) => y === c)).toBe(true);
    }
  });

  it('a tone comes out as decimatorResponse says, at the indices n_j', () => {
    const f = 2950;
    const amp = 100_000;
    const count = 100 * DECIMATION;
    const v = Int32Array.from({ length: count }, (_, n) => Math.round(amp * Math.cos((2 * Math.PI * f * n) / FS_INPUT_HZ + 0.3)));
    const out = new Decimator().push(v, new Int32Array(count));
    const h = decimatorResponse(f);
    for (let j = 40; j < out.v.length; j++) {
      const n = DECIMATED_FIRST_INDEX + DECIMATION * j;
      const expected = amp * Math.hypot(h.re, h.im) * Math.cos((2 * Math.PI * f * n) / FS_INPUT_HZ + 0.3 + Math.atan2(h.im, h.re));
      expect(Math.abs(out.v[j]! - expected)).toBeLessThan(1.5);
    }
  });

  it('keeps every alias of 0 … 3.1 kHz below −95 dB', () => {
    let worst = 0;
    for (let f = 0; f <= 3100; f += 50) {
      for (let m = 1; m * FS_DECIMATED_HZ - f <= FS_INPUT_HZ / 2; m++) {
        for (const src of [m * FS_DECIMATED_HZ - f, m * FS_DECIMATED_HZ + f]) {
          const h = decimatorResponse(src);
          worst = Math.max(worst, Math.hypot(h.re, h.im));
        }
      }
    }
    expect(20 * Math.log10(worst)).toBeLessThan(-95);
  });
});
