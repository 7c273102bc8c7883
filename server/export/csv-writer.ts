// The CSV export's byte writer: integers, exact watt-hours and doubles rounded to 9 significant digits written
// as ASCII digits straight into one reusable buffer (no strings, no allocation per row). The number format is
// described at the top of csv.ts; sig9 writes exactly String(Number(x.toPrecision(9))).

import { nwhToWhString } from '../store/energy.ts';

/** ASCII tens and ones digit of 0 … 99. */
export const TENS = Uint8Array.from({ length: 100 }, (_, k) => 48 + Math.floor(k / 10));
export const ONES = Uint8Array.from({ length: 100 }, (_, k) => 48 + (k % 10));
/** Exact powers of ten 10^0 … 10^22 (all exactly representable as doubles). */
const POW10 = Array.from({ length: 23 }, (_, k) => Number(`1e${k}`));

/**
 * The `n` lowest decimal digits of m (an integer 0 ≤ m < 2^31), written to b ending just before `end`, two at
 * a time from the tables.
 */
function digitsBefore(b: Uint8Array, end: number, m: number, n: number): void {
  let p = end;
  let rest = m;
  let k = n;
  while (k >= 2) {
    const q = (rest / 100) | 0;
    const r = rest - q * 100;
    b[--p] = ONES[r]!;
    b[--p] = TENS[r]!;
    rest = q;
    k -= 2;
  }
  if (k === 1) b[--p] = 48 + (rest % 10);
}

/** 10^-k for k = 0 … 7, as doubles (near enough to find a decade; the one-off case is corrected). */
const NEG_POW10 = Array.from({ length: 8 }, (_, k) => Number(`1e-${k}`));

/** a · 10^k with one rounding (a product or a quotient by an exact power of ten), for |k| ≤ 22. */
function scaleBy10(a: number, k: number): number {
  return k >= 0 ? a * POW10[k]! : a / POW10[-k]!;
}

/**
 * The CSV as bytes in one reusable buffer: digits of integers, doubles (sig9) and timestamps are written
 * directly, so a row allocates nothing and the export's garbage (and the process's peak memory) stays small
 * however long the export runs.
 */
export class CsvWriter {
  buf: Uint8Array;
  pos = 0;
  constructor(capacity: number) {
    this.buf = new Uint8Array(capacity);
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

  /** Room for `n` more bytes (a row is a few hundred at most; chunks are flushed long before). */
  reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const bigger = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    bigger.set(this.buf.subarray(0, this.pos));
    this.buf = bigger;
  }

  ascii(s: string): void {
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
    if (x < 2_147_483_648) {
      let digits = 1;
      while (digits < 10 && x >= POW10[digits]!) digits++;
      this.pos += digits;
      digitsBefore(this.buf, this.pos, x, digits);
      return;
    }
    // Above 2^49 x / 10 may round up to the next integer; String() is exact there.
    if (x >= 562_949_953_421_312) {
      this.ascii(String(x));
      return;
    }
    if (x < 10) {
      this.buf[this.pos++] = 48 + x;
      return;
    }
    let digits = 1;
    for (let t = x; t >= 10; t = Math.floor(t / 10)) digits++;
    const b = this.buf;
    let p = this.pos + digits;
    this.pos = p;
    while (digits-- > 0) {
      const q = Math.floor(x / 10);
      b[--p] = 48 + (x - q * 10);
      x = q;
    }
  }

  /** Exactly `width` digits, zero-padded (x < 10^width). */
  fixed(x: number, width: number): void {
    if (x < 2_147_483_648) {
      this.pos += width;
      digitsBefore(this.buf, this.pos, x, width);
      return;
    }
    const b = this.buf;
    let p = this.pos + width;
    this.pos = p;
    for (let k = 0; k < width; k++) {
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
    if (x === 0) {
      this.buf[this.pos++] = 48; // -0 too, as String(-0)
      return;
    }
    let a = x;
    if (a < 0) a = -a;
    // Outside [1e-6, 1e20) String() may use the exponent form; NaN and ±Infinity fail the test as well.
    if (!(a >= 1e-6 && a < 1e20)) {
      this.ascii(String(Number(x.toPrecision(9))));
      return;
    }
    // a = m · 10^(e − 8) with 10^8 ≤ m < 10^9. The decade by comparisons (cheaper than log10; measured values
    // sit within a few decades of 1); near a power of ten it may be one off, which is fixed below.
    let e = 0;
    if (a >= 1) {
      while (e < 19 && a >= POW10[e + 1]!) e++;
    } else {
      e = -1;
      while (a < NEG_POW10[-e]!) e--;
    }
    let y = scaleBy10(a, 8 - e);
    if (y < 1e8) {
      // a < 10^e: one decade down (where y then rounds up to 10^9, the carry below brings it back).
      e--;
      y = scaleBy10(a, 8 - e);
    } else if (y >= 999_999_999.5) {
      // Rounds to 10^9, or the decade was one too low: one decade up. Right at the tie only toPrecision can tell.
      if (y - 999_999_999.5 < 2.384185791015625e-7) {
        this.ascii(String(Number(x.toPrecision(9))));
        return;
      }
      e++;
      y = scaleBy10(a, 8 - e);
    }
    // y carries one rounding (the product or quotient): where it could have moved y across a half, the
    // integer arithmetic cannot tell which way the exact value rounds; toPrecision can.
    const frac = y - Math.floor(y);
    if (Math.abs(frac - 0.5) < 2.384185791015625e-7) {
      this.ascii(String(Number(x.toPrecision(9))));
      return;
    }
    let m = Math.round(y) | 0;
    if (m >= 1_000_000_000) {
      m = 100_000_000;
      e++;
    }
    if (x < 0) this.buf[this.pos++] = 45;
    // Drop trailing zeros: `digits` significant digits remain.
    let digits = 9;
    while (m % 10 === 0) {
      m = (m / 10) | 0;
      digits--;
    }
    const b = this.buf;
    if (e >= 0) {
      const intDigits = e + 1;
      if (digits <= intDigits) {
        // An integer: its digits, then zeros up to the decimal point.
        digitsBefore(b, this.pos + digits, m, digits);
        let p = this.pos + digits;
        for (let k = digits; k < intDigits; k++) b[p++] = 48;
        this.pos = p;
      } else {
        const fractionDigits = digits - intDigits;
        const whole = (m / POW10[fractionDigits]!) | 0;
        const end = this.pos + digits + 1;
        digitsBefore(b, end, m - whole * POW10[fractionDigits]!, fractionDigits);
        b[this.pos + intDigits] = 46;
        digitsBefore(b, this.pos + intDigits, whole, intDigits);
        this.pos = end;
      }
    } else {
      // 0.000ddd: −e − 1 zeros after the point.
      let p = this.pos;
      b[p++] = 48;
      b[p++] = 46;
      for (let k = 1; k < -e; k++) b[p++] = 48;
      p += digits;
      digitsBefore(b, p, m, digits);
      this.pos = p;
    }
  }

  /** Exact decimal watt-hours from integer nWh, as nwhToWhString. */
  wh(nwh: number | bigint): void {
    if (typeof nwh === 'bigint') {
      this.ascii(nwhToWhString(nwh));
      return;
    }
    let m = nwh;
    if (m < 0) {
      this.byte(45);
      m = -m;
    }
    let whole = Math.floor(m / 1e9);
    // m / 1e9 is rounded: near a whole number it can land on the wrong side; m and whole·1e9 are exact.
    if (whole * 1e9 > m) whole--;
    else if (m - whole * 1e9 >= 1e9) whole++;
    this.uint(whole);
    this.byte(46);
    this.fixed(m - whole * 1e9, 9);
  }
}
/** One number as the export writes the rounded columns (for tests and docs): String(Number(x.toPrecision(9))). */
export function formatSig9(x: number): string {
  const w = new CsvWriter(64);
  w.sig9(x);
  return w.take();
}
