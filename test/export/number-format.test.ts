// The export's rounded columns: formatSig9 must write exactly String(Number(x.toPrecision(9))) for every
// double, whichever path (integer digits or the toPrecision fallback) it takes.

import { describe, expect, it } from 'vitest';
import { CsvWriter, formatSig9 } from '../../server/export/csv-writer.ts';
import { nwhToWhString } from '../../server/store/energy.ts';
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

/** The adjacent doubles of x (x finite, positive): the values a rounding margin must be right about. */
function neighbours(x: number, n: number): number[] {
  const v = new DataView(new ArrayBuffer(8));
  v.setFloat64(0, x);
  const bits = v.getBigUint64(0);
  const out: number[] = [];
  for (let k = -n; k <= n; k++) {
    if (bits + BigInt(k) < 0n) continue;
    v.setBigUint64(0, bits + BigInt(k));
    out.push(v.getFloat64(0));
  }
  return out;
}

describe('formatSig9 at the boundaries of its arithmetic', () => {
  it('matches the reference next to every power of ten and every 9-digit rounding carry, a few ulps either side', () => {
    for (let e = -325; e <= 308; e++) {
      // The decade boundary itself, the values rounding up onto it (9.999999995…), and a carry that stops
      // inside the digits (1.99999999950…, 1.2999999995…).
      for (const mantissa of ['1', '9.999999995', '9.9999999949999', '1.999999995', '1.2999999995', '5.000000005', '2.5']) {
        const x = Number(`${mantissa}e${e}`);
        if (!(x > 0 && Number.isFinite(x))) continue;
        for (const y of neighbours(x, 3)) {
          expectSame(y);
          expectSame(-y);
        }
      }
    }
  });

  it('matches the reference for every decade and every count of trailing zeros (the point and zero placement)', () => {
    const next = rng(7);
    for (let e = -8; e <= 22; e++) {
      for (let zeros = 0; zeros <= 8; zeros++) {
        for (let k = 0; k < 20; k++) {
          // 9 significant digits ending in `zeros` zeros (the leading one non-zero), as x = m · 10^(e − 8).
          const kept = 9 - zeros;
          const lead = 1 + Math.floor(next() * 9);
          let digits = String(lead);
          for (let j = 1; j < kept; j++) digits += String(j === kept - 1 ? 1 + Math.floor(next() * 9) : Math.floor(next() * 10));
          const x = Number(`${digits}${'0'.repeat(zeros)}e${e - 8}`);
          expectSame(x);
          expectSame(-x);
        }
      }
    }
  });

  it('matches the reference on subnormals, signed zeros and the extremes', () => {
    const next = rng(11);
    for (const x of [5e-324, 1e-323, 2.225073858507201e-308, 2.2250738585072014e-308, Number.MIN_VALUE * 3, Number.MAX_VALUE, -0, 0]) {
      expectSame(x);
      expectSame(-x);
    }
    for (let k = 0; k < 2000; k++) expectSame(next() * 2.2250738585072014e-308);
    expect(formatSig9(-0)).toBe('0');
    expect(formatSig9(5e-324)).toBe('5e-324');
    expect(formatSig9(NaN)).toBe('NaN');
    expect(formatSig9(-Infinity)).toBe('-Infinity');
  });

  it('matches the reference on integers from 2^31 to 2^53 and around 10^9', () => {
    const next = rng(13);
    const fixedCases = [2 ** 31 - 1, 2 ** 31, 2 ** 31 + 1, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 999_999_999, 1e9, 1e9 + 1, 1e9 - 0.5, 1e9 + 0.5];
    for (const x of fixedCases) {
      expectSame(x);
      expectSame(-x);
    }
    for (let k = 0; k < 50_000; k++) {
      const bitsOfMagnitude = 31 + next() * 22;
      const x = Math.floor(2 ** bitsOfMagnitude);
      expectSame(x);
      expectSame(-x);
    }
    for (let p = 31; p <= 53; p++) {
      expectSame(2 ** p);
      expectSame(2 ** p - 1);
    }
  });

  it('matches the reference on typical measurement values (mains V, load A, pf, Hz, coverage, DC offsets)', () => {
    const next = rng(17);
    for (let k = 0; k < 40_000; k++) {
      const irms = 10 ** (-3 + 5 * next());
      const pf = 0.5 + 0.5 * next();
      const vrms = 230 + 6 * (next() - 0.5);
      for (const x of [vrms, irms, vrms * irms * pf, vrms * irms, pf, 50 + (next() - 0.5), (next() - 0.5) * 4e-4, 1, Math.floor(next() * 1000) / 1000]) {
        expectSame(x);
        expectSame(-x);
      }
    }
    expect(formatSig9(1)).toBe('1');
    expect(formatSig9(-0.000123456789)).toBe('-0.000123456789');
    expect(formatSig9(50.0000000004)).toBe('50');
    expect(formatSig9(0.5000000004)).toBe('0.5');
    expect(formatSig9(49.999999995)).toBe('50');
  });

  it('matches the reference on ties and their neighbours, where the arithmetic gives way to toPrecision', () => {
    const next = rng(19);
    for (let k = 0; k < 20_000; k++) {
      const decade = Math.floor(next() * 30) - 8;
      const tie = Number(`${Math.floor(next() * 9e8 + 1e8)}5e${decade - 9}`);
      for (const y of neighbours(tie, 2)) expectSame(y);
    }
  });
});

describe('CsvWriter integers and watt-hours', () => {
  const written = (f: (w: CsvWriter) => void): string => {
    const w = new CsvWriter(4);
    f(w);
    return w.take();
  };

  it('uint and integer write String(x) across every digit count, up to and past 2^53', () => {
    const next = rng(23);
    const cases = [0, 1, 9, 10, 99, 100, 999, 1000, 9999, 10_000, 99_999_999, 100_000_000, 999_999_999, 1e9, 2 ** 31, 2 ** 49 - 1, 2 ** 49, 2 ** 53 - 1];
    for (let k = 0; k < 20_000; k++) cases.push(Math.floor(next() * 10 ** (1 + Math.floor(next() * 16))));
    for (let x = 0; x < 12_000; x++) cases.push(x);
    for (const x of cases) {
      if (!Number.isSafeInteger(x)) continue;
      expect(written((w) => w.uint(x))).toBe(String(x));
      expect(written((w) => w.integer(x))).toBe(String(x));
    }
    for (const x of [-1, -0, 1.5, -(2 ** 40), 2 ** 60, NaN, Infinity]) expect(written((w) => w.integer(x))).toBe(String(x));
  });

  it('wh writes the exact decimal of integer nWh, negatives and bigints included, as nwhToWhString', () => {
    const next = rng(31);
    const cases: number[] = [0, 1, 999_999_999, 1e9, 1e9 + 1, 2e9 - 1, 123_456_789_012, 2 ** 53 - 1, 2 ** 53 - 1e9, 9_007_199_000_000_000];
    for (let k = 0; k < 50_000; k++) cases.push(Math.floor(next() * 10 ** (1 + next() * 14.9)));
    for (const x of cases) {
      expect(written((w) => w.wh(x))).toBe(nwhToWhString(BigInt(x)));
      if (x !== 0) expect(written((w) => w.wh(-x))).toBe(nwhToWhString(BigInt(-x)));
    }
    for (const big of [2n ** 53n, 2n ** 64n + 7n, -(10n ** 30n) - 1n]) expect(written((w) => w.wh(big))).toBe(nwhToWhString(big));
    expect(() => written((w) => w.wh(2 ** 60))).toThrow(RangeError);
    expect(() => written((w) => w.wh(1.5))).toThrow(/not a safe integer/);
  });

  it('writes numbers back to back into one growing buffer without one spilling into the next', () => {
    // The digit stores reach past a number's end; the next number, and the growth of the buffer, must not care.
    const next = rng(37);
    const w = new CsvWriter(8);
    const expected: string[] = [];
    for (let k = 0; k < 20_000; k++) {
      const kind = k % 4;
      // Doubles of every decade sig9 writes digits for and beyond; integers below 2^53 for the exact writers.
      const x = kind === 0 ? (next() - 0.5) * 10 ** (Math.floor(next() * 30) - 8) : Math.round((next() - 0.5) * 10 ** (next() * 15.9));
      if (kind === 0) {
        w.sig9(x);
        expected.push(String(Number(x.toPrecision(9))));
      } else if (kind === 1) {
        w.wh(x);
        expected.push(nwhToWhString(BigInt(x)));
      } else if (kind === 2) {
        w.uint(Math.abs(x));
        expected.push(String(Math.abs(x)));
      } else {
        w.integer(x);
        expected.push(String(x));
      }
      w.reserve(1);
      w.byte(44);
    }
    expect(w.take()).toBe(`${expected.join(',')},`);
  });
});
