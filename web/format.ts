// Number formatting for tiles and axes: engineering prefixes so 0.0042 A reads as 4.20 mA.

const PREFIXES: [number, string][] = [
  [1e9, 'G'],
  [1e6, 'M'],
  [1e3, 'k'],
  [1, ''],
  [1e-3, 'm'],
  [1e-6, 'µ'],
];

/** Three significant digits with an SI prefix; '—' for missing values. */
export function si(value: number | null | undefined, unit: string): { text: string; unit: string } {
  if (value === null || value === undefined || !Number.isFinite(value)) return { text: '—', unit };
  const mag = Math.abs(value);
  if (mag === 0) return { text: '0', unit };
  const [scale, prefix] = PREFIXES.find(([s]) => mag >= s * 0.9995) ?? PREFIXES[PREFIXES.length - 1]!;
  const scaled = value / scale;
  const digits = Math.abs(scaled) >= 100 ? 1 : Math.abs(scaled) >= 10 ? 2 : 3;
  return { text: scaled.toFixed(digits), unit: prefix + unit };
}

export function fixed(value: number | null | undefined, digits: number): string {
  return value === null || value === undefined || !Number.isFinite(value) ? '—' : value.toFixed(digits);
}

export function integer(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

const DURATION_UNITS: [number, string][] = [
  [86_400_000, 'd'],
  [3_600_000, 'h'],
  [60_000, 'min'],
  [1_000, 's'],
  [1, 'ms'],
];

/** A length of time as a person says it: '200 ms', '3 s', '45 min', '2 h', '1.5 d' (not '2.700 ks'). */
export function duration(ms: number): string {
  if (!Number.isFinite(ms)) return '—';
  const mag = Math.abs(ms);
  const [scale, unit] = DURATION_UNITS.find(([s]) => mag >= s) ?? DURATION_UNITS[DURATION_UNITS.length - 1]!;
  return `${+(ms / scale).toFixed(2)} ${unit}`;
}

/**
 * An energy register in kWh, as a meter shows it: grouped whole kWh and four decimals (0.1 Wh), so a load of a
 * few hundred watts moves the last digit every couple of seconds.
 */
export function kwhRegister(wh: number | null | undefined): string {
  if (wh === null || wh === undefined || !Number.isFinite(wh)) return '—';
  return (wh / 1000).toLocaleString('en-US', { minimumFractionDigits: 4, maximumFractionDigits: 4 });
}

const pad2 = (n: number): string => String(n).padStart(2, '0');

/** The browser's local date as ISO 8601 (YYYY-MM-DD), as the CSV writes it. */
export function isoDate(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}`;
}

/** The browser's local 24-hour time: HH:MM, or HH:MM:SS when `seconds`, as the CSV writes it. */
export function isoTime(ms: number, seconds: boolean): string {
  const d = new Date(ms);
  const hm = `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
  return seconds ? `${hm}:${pad2(d.getSeconds())}` : hm;
}

/**
 * Labels of a time axis (ticks in ms, `stepMs` apart): the time of day (with milliseconds for steps below a
 * second), in 24-hour ISO form like the CSV, with
 * the date under the first tick and under each tick where the date changes; only dates once ticks are days apart.
 */
export function timeTicks(ticksMs: number[], stepMs: number): string[] {
  let lastDate = '';
  return ticksMs.map((t) => {
    const date = isoDate(t);
    if (stepMs >= 86_400_000) return date;
    const ms = stepMs < 1000 ? `.${String(((t % 1000) + 1000) % 1000).padStart(3, '0')}` : '';
    const time = isoTime(t, stepMs < 60_000) + ms;
    const label = date === lastDate ? time : `${time}\n${date}`;
    lastDate = date;
    return label;
  });
}
