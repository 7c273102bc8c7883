// Energy bookkeeping helpers. The conversion of device energy (Σ v·i, LSB²·samples) to integer nanowatt-hours
// is server/dsp/derive.ts's energyNanoWattHours (exact rational, rounded once); the store applies it (as
// NwhConverter below, the same arithmetic with the scale prepared once) to the
// epoch's running sum ("cumulative rounding"): the energy of a window or gap is nwh(R_after) − nwh(R_before),
// where R is the epoch's running Σ sum_vi. The per-window roundings then telescope: Σ window nWh == nwh(Σ raw)
// exactly, so the device counter equals the accumulator delta converted once, with no drift however many
// windows.

/** Exact decimal watt-hours from nWh (9 decimals), for CSV and JSON where a string keeps it exact. */
export function nwhToWhString(nwh: bigint): string {
  const negative = nwh < 0n;
  const magnitude = negative ? -nwh : nwh;
  const whole = magnitude / 1_000_000_000n;
  const fraction = (magnitude % 1_000_000_000n).toString().padStart(9, '0');
  return `${negative ? '-' : ''}${whole}.${fraction}`;
}

/**
 * energyNanoWattHours (server/dsp/derive.ts) with the scale's exact rational prepared once: the store converts
 * at every window, and re-deriving three exact fractions per call costs more than the insert itself. The
 * arithmetic is the same — exact product, one rounding to nearest, ties to even — and a test checks that both
 * agree on random and extreme values.
 */
export class NwhConverter {
  private readonly num: bigint;
  private readonly den: bigint;
  constructor(readonly scale: { kv: number; ki: number; fs: number }) {
    const kv = exactFraction(scale.kv);
    const ki = exactFraction(scale.ki);
    const fs = exactFraction(scale.fs);
    this.num = kv.num * ki.num * 1_000_000_000n * fs.den;
    this.den = kv.den * ki.den * fs.num * 3600n;
    if (this.num <= 0n || this.den <= 0n) throw new RangeError('energy scale must be positive');
  }

  nwh(raw: bigint): bigint {
    const num = raw * this.num;
    const den = this.den;
    let q = num / den;
    let r = num % den;
    if (r < 0n) {
      q -= 1n;
      r += den;
    }
    const twice = 2n * r;
    if (twice > den || (twice === den && (q & 1n) === 1n)) q += 1n;
    return q;
  }
}

/** A finite double as the exact fraction it denotes (denominator a power of two). */
function exactFraction(x: number): { num: bigint; den: bigint } {
  if (!Number.isFinite(x)) throw new RangeError(`energy scale must be finite, got ${x}`);
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const sign = bits >> 63n ? -1n : 1n;
  const biased = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & ((1n << 52n) - 1n);
  const mantissa = biased === 0 ? fraction : fraction | (1n << 52n);
  const exp = (biased === 0 ? 1 : biased) - 1075;
  return exp >= 0 ? { num: sign * (mantissa << BigInt(exp)), den: 1n } : { num: sign * mantissa, den: 1n << BigInt(-exp) };
}
