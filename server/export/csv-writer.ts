// The CSV export's byte writer: integers, exact watt-hours and doubles rounded to 9 significant digits written
// as ASCII digits straight into one reusable buffer (no strings, no allocation per row). The number format is
// described at the top of csv.ts; sig9 writes exactly String(Number(x.toPrecision(9))).

import { nwhToWhString } from '../store/energy.ts';

/** Exact powers of ten 10^0 … 10^22 (all exactly representable as doubles). */
const POW10 = Float64Array.from({ length: 23 }, (_, k) => Number(`1e${k}`));

/**
 * ASCII of the four digits of 0 … 9999 (leading zeros included) as one little-endian word, the first digit in
 * the lowest byte: four digits in one store. 40 kB, which a long export keeps in cache; composing the word from
 * the 2-digit tables instead measured slower.
 */
const QUADS = Uint32Array.from({ length: 10_000 }, (_, k) => {
  const d = [Math.floor(k / 1000), Math.floor(k / 100) % 10, Math.floor(k / 10) % 10, k % 10];
  return ((48 + d[0]!) | ((48 + d[1]!) << 8) | ((48 + d[2]!) << 16) | ((48 + d[3]!) << 24)) >>> 0;
});
/** "0000", "0.00" as little-endian words (zero runs and the start of 0.000ddd). */
const ZEROS4 = 0x30303030;
const ZERO_POINT_ZEROS = 0x30302e30;

/**
 * The 9 digits of m (an int32 0 ≤ m < 10^9, leading zeros written) at p … p + 8: three stores and two
 * divisions by constants, which the JIT turns into multiplications.
 */
function nineDigits(v: DataView, p: number, m: number): void {
  const top = (m / 100_000_000) | 0;
  const rest = m - top * 100_000_000;
  const mid = (rest / 10_000) | 0;
  v.setUint8(p, 48 + top);
  v.setUint32(p + 1, QUADS[mid]!, true);
  v.setUint32(p + 5, QUADS[rest - mid * 10_000]!, true);
}

/** Trailing decimal zeros of m (an int32 0 < m < 10^9): at most four tests, not one division per zero. */
function trailingZeros(m: number): number {
  if (m % 10 !== 0) return 0;
  let t = m;
  let n = 0;
  if (t % 10_000 === 0) {
    t = (t / 10_000) | 0;
    n = 4;
    if (t % 10_000 === 0) return 8;
  }
  if (t % 100 === 0) {
    t = (t / 100) | 0;
    n += 2;
  }
  if (t % 10 === 0) n++;
  return n;
}

/** Scratch for reading a double's exponent (big-endian reads, so the host's byte order does not matter). */
const BITS = new DataView(new ArrayBuffer(8));
/**
 * The decade of a double from its binary exponent. a in [2^E, 2^(E+1)) lies in decade d = floor(E·log10 2) or
 * d + 1, and one comparison with 10^(d+1) tells which: exact from 10^0 on; below, 10^(d+1) is the nearest
 * double, and sig9 corrects the one-off case as it must for any guess. Per biased exponent, from 1003 (that of
 * 1e-6) to 1089 (of the largest double below 1e20), sig9's range: [d, 10^(d+1), 10^(8−d), 10^(7−d)], the last
 * two the exact multipliers that bring either decade to 9 integer digits (NaN where that would be a division).
 */
const DECADES = new Float64Array(4 * 87);
for (let k = 0; k < 87; k++) {
  const d = Math.floor((k + 1003 - 1023) * Math.log10(2));
  DECADES[4 * k] = d;
  DECADES[4 * k + 1] = Number(`1e${d + 1}`);
  DECADES[4 * k + 2] = d <= 8 ? POW10[8 - d]! : NaN;
  DECADES[4 * k + 3] = d <= 7 ? POW10[7 - d]! : NaN;
}

/** a · 10^(8−e) with one rounding (a product or a quotient by an exact power of ten), for −7 ≤ e ≤ 20. */
function scaleToNine(a: number, e: number): number {
  return e <= 8 ? a * POW10[8 - e]! : a / POW10[e - 8]!;
}
/**
 * The margin around a rounding tie, 2^-22. y = a · 10^k carries one rounding, at most 2^-24 (half an ulp below
 * 2^30), and y + 0.5 at most one more: where y lies within the margin of a half, the exact a · 10^k may lie on
 * either side of it, and toPrecision decides; elsewhere both roundings leave the integer part as it is.
 */
const TIE = 2.384185791015625e-7;

/**
 * The CSV as bytes in one reusable buffer: digits of integers, doubles (sig9) and timestamps are written
 * directly, so a row allocates nothing and the export's garbage (and the process's peak memory) stays small
 * however long the export runs.
 */
export class CsvWriter {
  /** The bytes; callers may write into it (after reserve), but only reserve replaces it (view follows it). */
  buf: Uint8Array;
  pos = 0;
  /** buf's bytes, for the stores of four digits at once. */
  private view: DataView;
  constructor(capacity: number) {
    this.buf = new Uint8Array(capacity);
    this.view = new DataView(this.buf.buffer);
  }

  /** The bytes so far as a string (CSV is ASCII), and start over. */
  take(): string {
    const s = Buffer.from(this.buf.buffer, this.buf.byteOffset, this.pos).toString('latin1');
    this.pos = 0;
    return s;
  }

  /** The bytes so far, as a view valid until the next write, and start over. */
  takeView(): Uint8Array {
    const v = this.buf.subarray(0, this.pos);
    this.pos = 0;
    return v;
  }

  /**
   * Room for `n` more bytes (a row is a few hundred at most; chunks are flushed long before). The number
   * writers see to their own room: their word stores may reach a few bytes past the number's end.
   */
  reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const bigger = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    bigger.set(this.buf.subarray(0, this.pos));
    this.buf = bigger;
    this.view = new DataView(bigger.buffer);
  }

  ascii(s: string): void {
    this.reserve(s.length);
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < s.length; i++) b[p++] = s.charCodeAt(i);
    this.pos = p;
  }

  byte(c: number): void {
    this.buf[this.pos++] = c;
  }

  /** A non-negative safe integer in decimal. */
  uint(x: number): void {
    if (x < 10) {
      // Flags and most whole watt-hours: one digit.
      if (this.pos >= this.buf.length) this.reserve(1);
      this.buf[this.pos++] = 48 + x;
      return;
    }
    if (x < 1_000_000_000) {
      if (this.pos + 12 > this.buf.length) this.reserve(12);
      const v = this.view;
      const p = this.pos;
      const n = x | 0;
      if (n < 10_000) {
        // The digits are the top bytes of the 4-digit word: shift the leading zeros out, store the rest (and
        // zero bytes past the end, which later writes overwrite).
        const digits = n < 100 ? 2 : n < 1000 ? 3 : 4;
        v.setUint32(p, QUADS[n]! >>> (8 * (4 - digits)), true);
        this.pos = p + digits;
      } else if (n < 100_000_000) {
        const hi = (n / 10_000) | 0;
        const digits = hi < 10 ? 1 : hi < 100 ? 2 : hi < 1000 ? 3 : 4;
        v.setUint32(p, QUADS[hi]! >>> (8 * (4 - digits)), true);
        v.setUint32(p + digits, QUADS[n - hi * 10_000]!, true);
        this.pos = p + digits + 4;
      } else {
        nineDigits(v, p, n);
        this.pos = p + 9;
      }
      return;
    }
    // Above 2^49 x / 10 may round up to the next integer; String() is exact there.
    if (x >= 562_949_953_421_312) {
      this.ascii(String(x));
      return;
    }
    let digits = 1;
    for (let t = x; t >= 10; t = Math.floor(t / 10)) digits++;
    this.reserve(digits);
    const b = this.buf;
    let p = this.pos + digits;
    this.pos = p;
    while (digits-- > 0) {
      const q = Math.floor(x / 10);
      b[--p] = 48 + (x - q * 10);
      x = q;
    }
  }

  /** An integer-valued double (samples, flags) exactly, as String(x). */
  integer(x: number): void {
    if (Number.isSafeInteger(x) && x >= 0) this.uint(x);
    else this.ascii(String(x));
  }

  /** A double rounded to 9 significant digits, as String(Number(x.toPrecision(9))) writes it (see the top). */
  sig9(x: number): void {
    const n = x | 0;
    if (n === x && n < 1_000_000_000 && n > -1_000_000_000) {
      // An integer of at most 9 digits (coverage 1, zeros, −0 as "0"): itself.
      this.int9(n);
      return;
    }
    const a = Math.abs(x);
    // Outside [1e-6, 1e20) String() may use the exponent form; NaN and ±Infinity fail the test as well. (Zeros,
    // −0 too, were written as integers above.)
    if (!(a >= 1e-6 && a < 1e20)) {
      this.viaToPrecision(x);
      return;
    }
    // At most 22 bytes (a sign, 21 digits), and the word stores reach 4 past the digits.
    if (this.pos + 32 > this.buf.length) this.reserve(32);
    // a = m · 10^(e − 8) with 10^8 ≤ m < 10^9. The decade from the binary exponent (the top 12 bits are sign,
    // zero here, and the biased exponent); near a power of ten it may be one off, which is fixed below.
    BITS.setFloat64(0, a);
    const t = 4 * ((BITS.getUint16(0) >> 4) - 1003);
    // An int32, as every position computed from it: a double here would turn pos into a double field.
    let e = DECADES[t]! | 0;
    const nextDecade = a >= DECADES[t + 1]!;
    let y: number;
    if (a < 1e9) {
      // The multiplier from the table, not after e: it is loaded while the comparison is still on its way.
      if (nextDecade) {
        e++;
        y = a * DECADES[t + 3]!;
      } else {
        y = a * DECADES[t + 2]!;
      }
    } else {
      if (nextDecade) e++;
      y = scaleToNine(a, e);
    }
    if (y < 1e8) {
      // a < 10^e: one decade down (where y then rounds up to 10^9, the carry below brings it back).
      e--;
      y = scaleToNine(a, e);
    } else if (y >= 999_999_999.5) {
      // Rounds to 10^9, or the decade was one too low: one decade up. Right at the tie only toPrecision can tell.
      if (y - 999_999_999.5 < TIE) {
        this.viaToPrecision(x);
        return;
      }
      e++;
      y = scaleToNine(a, e);
    }
    // Round half up by truncating y + 0.5, unless y lies within TIE of a half (r within TIE of an integer): there
    // the exact a · 10^(8−e) may lie on the other side, and toPrecision decides.
    const r = y + 0.5;
    let m = r | 0;
    const f = r - m;
    if (f < TIE || f > 1 - TIE) {
      this.viaToPrecision(x);
      return;
    }
    if (m === 1_000_000_000) {
      m = 100_000_000;
      e++;
    }
    const v = this.view;
    let p = this.pos;
    if (x < 0) v.setUint8(p++, 45);
    if (e >= 0) {
      // The digits of m with a point after digit e: the integer layout, then the digits right of the point
      // stored again one byte further (whole words; the point then overwrites the one byte left behind).
      v.setUint8(p, 48 + ((m / 100_000_000) | 0));
      const rest = m % 100_000_000;
      const mid = (rest / 10_000) | 0;
      const midDigits = QUADS[mid]!;
      const lowDigits = QUADS[rest - mid * 10_000]!;
      v.setUint32(p + 1, midDigits, true);
      if (e < 4) {
        v.setUint32(p + 2 + e, midDigits >>> (8 * e), true);
        v.setUint32(p + 6, lowDigits, true);
      } else {
        v.setUint32(p + 5, lowDigits, true);
        if (e >= 8) {
          // An integer of e + 1 ≤ 21 digits: m's nine, then zeros (words; the bytes past the end are scratch).
          v.setUint32(p + 9, ZEROS4, true);
          v.setUint32(p + 13, ZEROS4, true);
          v.setUint32(p + 17, ZEROS4, true);
          this.pos = p + e + 1;
          return;
        }
        v.setUint32(p + 2 + e, lowDigits >>> (8 * (e - 4)), true);
      }
      v.setUint8(p + 1 + e, 46);
      // Without trailing zeros, and without the point when nothing is left after it.
      const fractionDigits = 8 - e - trailingZeros(m);
      this.pos = fractionDigits > 0 ? p + e + 2 + fractionDigits : p + e + 1;
    } else {
      // 0.000ddd: −e − 1 ≤ 6 zeros after the point, from two words.
      v.setUint32(p, ZERO_POINT_ZEROS, true);
      v.setUint32(p + 4, ZEROS4, true);
      p += 1 - e;
      nineDigits(v, p, m);
      this.pos = p + 9 - trailingZeros(m);
    }
  }

  /** An int32 −10^9 < n < 10^9 in decimal. */
  private int9(n: number): void {
    if (n < 0) {
      this.ascii('-');
      this.uint(-n);
    } else {
      this.uint(n);
    }
  }

  /**
   * sig9 the slow way, for what the digit arithmetic leaves out: a double outside [1e-6, 1e20) (the exponent
   * forms, non-finite) or too near a rounding tie to tell by it.
   */
  private viaToPrecision(x: number): void {
    this.ascii(String(Number(x.toPrecision(9))));
  }

  /** Exact decimal watt-hours from integer nWh, as nwhToWhString. */
  wh(nwh: number | bigint): void {
    if (typeof nwh === 'bigint') {
      this.ascii(nwhToWhString(nwh));
      return;
    }
    if (!Number.isSafeInteger(nwh)) throw new RangeError(`energy ${nwh} nWh is not a safe integer: pass it as a bigint`);
    let m = nwh;
    if (m < 0) {
      this.ascii('-');
      m = -m;
    }
    let whole = Math.floor(m / 1e9);
    // m / 1e9 is rounded: near a whole number it can land on the wrong side; m and whole·1e9 are exact.
    if (whole * 1e9 > m) whole--;
    else if (m - whole * 1e9 >= 1e9) whole++;
    this.uint(whole);
    if (this.pos + 10 > this.buf.length) this.reserve(10);
    this.buf[this.pos] = 46;
    nineDigits(this.view, this.pos + 1, (m - whole * 1e9) | 0);
    this.pos += 10;
  }
}

/** One number as the export writes the rounded columns (for tests and docs): String(Number(x.toPrecision(9))). */
export function formatSig9(x: number): string {
  const w = new CsvWriter(64);
  w.sig9(x);
  return w.take();
}
