// The electricity tariff the dashboard prices energy with: a currency, a standing charge per day and one or
// more time-of-use bands (a flat tariff is one band over the whole day). Kept as JSON in the `settings` table
// under 'tariff', written in one statement (so a crash leaves the old tariff or the new one, never half of
// one), and checked on the way in and on the way out: a day of the week that two bands price, or none, is
// refused with the hour that is wrong.

import type Database from 'better-sqlite3';

export interface TariffBand {
  name: string;
  /** Price of 1 kWh in the tariff's currency; energy fed back (net negative) is credited at it. */
  price_per_kwh: number;
  /** Local wall-clock start and end, "HH:MM" (end "24:00" for midnight; an end before the start wraps past midnight). */
  from: string;
  to: string;
  /** ISO weekdays (1 = Monday … 7 = Sunday) the band applies on; every day when absent. */
  days?: number[];
}

export interface Tariff {
  currency: string;
  standing_charge_per_day: number;
  bands: TariffBand[];
}

/** A tariff that does not price every minute exactly once, or a value out of form (the API answers 400). */
export class TariffError extends Error {
  override readonly name = 'TariffError';
}

/** The database did not take the tariff (a full disk); the previous one stays (the API answers 503). */
export class TariffWriteError extends Error {
  override readonly name = 'TariffWriteError';
  readonly statusCode = 503;
}

const KEY = 'tariff';
const MINUTES_PER_DAY = 1440;
const ALL_DAYS = [1, 2, 3, 4, 5, 6, 7];
const DAY_NAMES = ['', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'];

/** "HH:MM" → minutes after local midnight (0 … 1440). */
export function minuteOfDay(hhmm: string, what: string): number {
  const m = /^([01]\d|2[0-4]):([0-5]\d)$/.exec(hhmm);
  const minutes = m ? Number(m[1]) * 60 + Number(m[2]) : NaN;
  if (!(minutes <= MINUTES_PER_DAY)) throw new TariffError(`${what} must be a time "HH:MM" from 00:00 to 24:00, got '${hhmm}'`);
  return minutes;
}

/** The band's local [start, end) minute spans of one day, a wrapping band split at midnight. */
export function bandSpans(band: TariffBand): [number, number][] {
  const from = minuteOfDay(band.from, `band '${band.name}' from`);
  const to = minuteOfDay(band.to, `band '${band.name}' to`);
  if (from === to || (from === 0 && to === MINUTES_PER_DAY)) return [[0, MINUTES_PER_DAY]];
  if (from < to) return [[from, to]];
  return [[from, MINUTES_PER_DAY], [0, to]].filter(([a, b]) => b! > a!) as [number, number][];
}

export function bandDays(band: TariffBand): number[] {
  return band.days ?? ALL_DAYS;
}

/** Refuses a tariff that leaves a minute of some weekday unpriced or prices one twice; returns it. */
export function checkTariff(t: Tariff): Tariff {
  if (t.bands.length === 0) throw new TariffError('a tariff needs at least one band (a flat tariff: one band from 00:00 to 24:00)');
  const names = new Set<string>();
  for (const b of t.bands) {
    if (names.has(b.name)) throw new TariffError(`two bands are called '${b.name}': give each band its own name`);
    names.add(b.name);
    for (const d of bandDays(b)) {
      if (!Number.isInteger(d) || d < 1 || d > 7) throw new TariffError(`band '${b.name}': days are 1 (Monday) … 7 (Sunday), got ${d}`);
    }
  }
  for (const day of ALL_DAYS) {
    const owner: (string | undefined)[] = new Array(MINUTES_PER_DAY);
    for (const b of t.bands) {
      if (!bandDays(b).includes(day)) continue;
      for (const [a, z] of bandSpans(b)) {
        for (let m = a; m < z; m++) {
          if (owner[m] !== undefined) {
            throw new TariffError(`on ${DAY_NAMES[day]} at ${clock(m)} both '${owner[m]}' and '${b.name}' apply: bands must not overlap`);
          }
          owner[m] = b.name;
        }
      }
    }
    const hole = owner.findIndex((o) => o === undefined);
    if (hole >= 0) {
      throw new TariffError(`on ${DAY_NAMES[day]} no band applies at ${clock(hole)}: the bands must cover every hour of every day`);
    }
  }
  return t;
}

function clock(minute: number): string {
  return `${String(Math.floor(minute / 60)).padStart(2, '0')}:${String(minute % 60).padStart(2, '0')}`;
}

/** The stored tariff, or null when none was set. */
export function loadTariff(db: Database.Database): Tariff | null {
  const json = db.prepare('SELECT value FROM settings WHERE key = ?').pluck().get(KEY) as string | undefined;
  if (json === undefined) return null;
  try {
    return checkTariff(JSON.parse(json) as Tariff);
  } catch (err) {
    throw new TariffError(`the stored tariff is unusable (${(err as Error).message}): set it again (PUT /api/tariff)`);
  }
}

/** Stores the tariff (checked first); on a failed write (a full disk) the old one stays and a TariffError says why. */
export function saveTariff(db: Database.Database, t: Tariff): Tariff {
  checkTariff(t);
  try {
    db.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(KEY, JSON.stringify(t));
  } catch (err) {
    throw new TariffWriteError(`the tariff could not be stored (${(err as Error).message}); the previous one stays in force`);
  }
  return t;
}
