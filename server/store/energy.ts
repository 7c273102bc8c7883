// Energy bookkeeping helpers. The conversion of device energy (Σ v·i, LSB²·samples) to integer nanowatt-hours
// is server/dsp/derive.ts's energyNanoWattHours (exact rational, rounded once); the store applies it to the
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

