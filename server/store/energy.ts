// Exact conversion of device energy (Σ v·i, LSB²·samples) to integer nanowatt-hours.
//
//   nWh = raw · kv · ki · 1e9 · fs_den / (fs_num · 3600)
//
// kv·ki is the one floating-point number in the chain (the analog front end's calibration). It is taken as
// the exact binary rational its double represents, so the conversion of any raw integer — up to the 96-bit
// accumulator — is an exact rational rounded once, half away from zero. Nothing is accumulated in floating
// point.
//
// Booking rule ("cumulative rounding"): the energy of a window or gap is nwh(R_after) − nwh(R_before), where R is
// the epoch's running Σ sum_vi. The per-window roundings then telescope: Σ window nWh == nwh(Σ raw) exactly, so
// the device counter equals the accumulator delta converted once, with no drift however many windows.

export interface EnergyScale {
  /** nWh = raw · num / den, rounded half away from zero. */
  readonly num: bigint;
  readonly den: bigint;
}

/** The exact rational value of a finite double: mantissa · 2^exponent. */
function doubleToRational(x: number): { num: bigint; den: bigint } {
  if (!Number.isFinite(x)) throw new RangeError(`energy scale must be finite, got ${x}`);
  if (x === 0) return { num: 0n, den: 1n };
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const sign = bits >> 63n ? -1n : 1n;
  const exponentBits = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & ((1n << 52n) - 1n);
  const mantissa = exponentBits === 0 ? fraction : fraction | (1n << 52n);
  const exponent = (exponentBits === 0 ? 1 : exponentBits) - 1075;
  return exponent >= 0
    ? { num: sign * mantissa * (1n << BigInt(exponent)), den: 1n }
    : { num: sign * mantissa, den: 1n << BigInt(-exponent) };
}

export function energyScale(kv: number, ki: number, fsNum: number, fsDen: number): EnergyScale {
  if (!(kv > 0) || !(ki > 0)) throw new RangeError(`kv and ki must be positive, got kv=${kv} ki=${ki}`);
  if (!Number.isSafeInteger(fsNum) || !Number.isSafeInteger(fsDen) || fsNum <= 0 || fsDen <= 0) {
    throw new RangeError(`sample rate must be a positive rational, got ${fsNum}/${fsDen}`);
  }
  const kvki = doubleToRational(kv * ki);
  return { num: kvki.num * 1_000_000_000n * BigInt(fsDen), den: kvki.den * BigInt(fsNum) * 3600n };
}

/** raw → nWh, rounded half away from zero. */
export function rawToNwh(raw: bigint, scale: EnergyScale): bigint {
  const product = raw * scale.num;
  const twice = (2n * (product < 0n ? -product : product) + scale.den) / (2n * scale.den);
  return product < 0n ? -twice : twice;
}

/** Exact decimal watt-hours from nWh (9 decimals), for CSV and JSON where a string keeps it exact. */
export function nwhToWhString(nwh: bigint): string {
  const negative = nwh < 0n;
  const magnitude = negative ? -nwh : nwh;
  const whole = magnitude / 1_000_000_000n;
  const fraction = (magnitude % 1_000_000_000n).toString().padStart(9, '0');
  return `${negative ? '-' : ''}${whole}.${fraction}`;
}
