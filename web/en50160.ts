// A summary like EN 50160's (§4.2): over a week of 10-minute values, the share within each limit. The standard
// asks 95 % of a week's values within ±10 % of the declared voltage, THD ≤ 8 %, and each harmonic voltage
// within its table's limit (orders 2 … 25; above, the standard gives none).

/** EN 50160 Table 1: harmonic voltage limits in % of the fundamental, by order. */
export const HARMONIC_LIMITS_PCT: Readonly<Record<number, number>> = Object.freeze({
  2: 2, 3: 5, 4: 1, 5: 6, 6: 0.5, 7: 5, 8: 0.5, 9: 1.5, 10: 0.5, 11: 3.5, 12: 0.5, 13: 3, 14: 0.5, 15: 0.5,
  16: 0.5, 17: 2, 18: 0.5, 19: 1.5, 20: 0.5, 21: 0.5, 22: 0.5, 23: 1.5, 24: 0.5, 25: 1.5,
});
export const VOLTAGE_BAND = 0.1;
export const THD_LIMIT = 0.08;
/** The share of a week's values the standard asks to be within each limit. */
export const REQUIRED_SHARE = 0.95;

/** The fields of a 10-minute aggregate the summary reads (GET /api/devices/:id/pq/harmonics). */
export interface TenMinuteValue {
  vrms: number;
  thd_v: number | null;
  h_v: number[];
}

export interface SummaryRow {
  /** what is checked, in words */
  label: string;
  /** values within the limit / values checked; null when none could be checked */
  share: number | null;
  checked: number;
  passes: boolean | null;
}

function row(label: string, values: readonly TenMinuteValue[], within: (v: TenMinuteValue) => boolean | null): SummaryRow {
  let checked = 0;
  let ok = 0;
  for (const v of values) {
    const r = within(v);
    if (r === null) continue;
    checked++;
    if (r) ok++;
  }
  const share = checked === 0 ? null : ok / checked;
  return { label, share, checked, passes: share === null ? null : share >= REQUIRED_SHARE };
}

/** One row for the voltage, one for THD, one per harmonic order with a limit. */
export function en50160Summary(values: readonly TenMinuteValue[], declaredV: number): SummaryRow[] {
  const rows = [
    row(`Voltage within ±${VOLTAGE_BAND * 100} % of ${declaredV} V`, values, (v) => Math.abs(v.vrms - declaredV) <= VOLTAGE_BAND * declaredV),
    row(`THD ≤ ${THD_LIMIT * 100} %`, values, (v) => (v.thd_v === null ? null : v.thd_v <= THD_LIMIT)),
  ];
  for (const [order, limit] of Object.entries(HARMONIC_LIMITS_PCT)) {
    const h = Number(order);
    rows.push(row(`H${h} ≤ ${limit} %`, values, (v) => (v.h_v[0]! > 0 ? (100 * v.h_v[h - 1]!) / v.h_v[0]! <= limit : null)));
  }
  return rows;
}
