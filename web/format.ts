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
