// Energy bookkeeping helpers. The conversion of device energy (Σ v·i, LSB²·samples) to integer nanowatt-hours
// is server/dsp/derive.ts's energyNanoWattHours (exact rational, rounded once); the store applies it to the
// epoch's running sum ("cumulative rounding"): the energy of a window or gap is nwh(R_after) − nwh(R_before),
// where R is the epoch's running Σ sum_vi. The per-window roundings then telescope: Σ window nWh == nwh(Σ raw)
// exactly, so the device counter equals the accumulator delta converted once, with no drift however many
// windows.

/** Exact decimal watt-hours from nWh (9 decimals), for CSV and JSON where a string keeps it exact. */
export function nwhToWhString(nwh: bigint): string {
  return nwhToDecimal(nwh, 9);
}

/** Exact decimal kilowatt-hours from nWh (12 decimals), for Home Assistant's energy sensors. */
export function nwhToKwhString(nwh: bigint): string {
  return nwhToDecimal(nwh, 12);
}

/** nWh / 10^decimals as an exact decimal string with `decimals` digits after the point. */
function nwhToDecimal(nwh: bigint, decimals: number): string {
  const negative = nwh < 0n;
  const magnitude = negative ? -nwh : nwh;
  const unit = 10n ** BigInt(decimals);
  const whole = magnitude / unit;
  const fraction = (magnitude % unit).toString().padStart(decimals, '0');
  return `${negative ? '-' : ''}${whole}.${fraction}`;
}
