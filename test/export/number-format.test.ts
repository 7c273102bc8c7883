// The export's rounded columns: formatSig9 must write exactly String(Number(x.toPrecision(9))) for every
// double, whichever path (integer digits or the toPrecision fallback) it takes.

import { describe, expect, it } from 'vitest';
import { formatSig9 } from '../../server/export/csv-writer.ts';
import { rng } from '../store/helpers.ts';

const reference = (x: number): string => String(Number(x.toPrecision(9)));

function expectSame(x: number): void {
  const got = formatSig9(x);
  if (got !== reference(x)) expect(got, `x = ${x} (${x.toPrecision(17)})`).toBe(reference(x));
}

describe('formatSig9', () => {
  it('writes typical measurement values as short decimals', () => {
    expect(formatSig9(230)).toBe('230');
    expect(formatSig9(230.0000012345)).toBe('230.000001');
    expect(formatSig9(0.5)).toBe('0.5');
    expect(formatSig9(1)).toBe('1');
    expect(formatSig9(-12.75)).toBe('-12.75');
    expect(formatSig9(49.99999999999)).toBe('50');
    expect(formatSig9(0.000123456789123)).toBe('0.000123456789');
    expect(formatSig9(123456789012345)).toBe('123456789000000');
    expect(formatSig9(0.1 + 0.2)).toBe('0.3');
  });

  it('matches the reference at the edges: zeros, decades, rounding carries, exponent ranges, non-finite', () => {
    const edges = [0, -0, 1e-6, 9.999999999e-7, 9.9999999949e-7, 1e-7, 1.5e-300, 5e-324, 1e20, 9.9999999999e19, 1e21, 1.7976931348623157e308,
      NaN, Infinity, -Infinity, 999999999.5, 999999999.4999, 99999999.95, 0.999999999, 0.9999999995, 9.999999995, 1.0000000005, 123456788.5,
      0.1234567885, 2 ** 53, 2 ** 53 + 2, -(2 ** 31), 2 ** 31, 4294967295.5];
    for (const x of edges) {
      expectSame(x);
      expectSame(-x);
    }
    for (let e = -7; e <= 21; e++) {
      for (const m of [1, 1.0000000049, 1.000000005, 9.9999999949, 9.999999995, 9.99999999951, 5.0000000050000001]) {
        expectSame(m * 10 ** e);
        expectSame(Number(`${m}e${e}`));
        expectSame(-Number(`${m}e${e}`));
      }
    }
  });

  it('matches the reference on a million random doubles across the decades, ties included', () => {
    const next = rng(20261126);
    for (let k = 0; k < 1_000_000; k++) {
      const decade = Math.floor(next() * 30) - 8;
      let x = (1 + 9 * next()) * 10 ** decade;
      // Every 8th value sits on a 10-digit decimal ending in 5, a tie at 9 digits before binary rounding.
      if (k % 8 === 0) x = Number(`${Math.floor(next() * 9e8 + 1e8)}5e${decade - 9}`);
      if (k % 2 === 1) x = -x;
      expectSame(x);
    }
  });
});
