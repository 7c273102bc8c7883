// Parsing of query values that a JSON schema cannot fully check: times, ranges, zones, field lists.
// Each failure is a BadRequestError whose message names the parameter and says what is accepted.

import { DateTime, IANAZone } from 'luxon';
import { offsetProblem } from '../export/csv.ts';
import { HISTORY_FIELDS, type HistoryField } from './deps.ts';

export class BadRequestError extends Error {
  readonly statusCode = 400;
  constructor(message: string) {
    super(message);
    this.name = 'BadRequestError';
  }
}

/** 2000-01-01 .. 2200-01-01: wide enough for any real record, narrow enough to catch unit mistakes. */
const MIN_MS = Date.UTC(2000, 0, 1);
const MAX_MS = Date.UTC(2200, 0, 1);

/**
 * Unix milliseconds, or ISO-8601 with a date. An ISO time without an offset is a wall-clock time in
 * `zone` (UTC unless given), which is what an export dialog's "from 00:00 in Europe/Berlin" means.
 */
export function parseTime(value: string, name: string, zone = 'utc'): number {
  let ms: number;
  if (/^-?\d+$/.test(value)) {
    ms = Number(value);
  } else {
    const dt = DateTime.fromISO(value, { zone, setZone: true });
    if (!dt.isValid || offsetProblem(value) !== undefined) {
      throw new BadRequestError(
        `'${name}' must be Unix milliseconds or ISO-8601 (e.g. 2026-03-29T12:00:00+02:00); got '${value}'`,
      );
    }
    ms = dt.toMillis();
  }
  if (!Number.isSafeInteger(ms) || ms < MIN_MS || ms > MAX_MS) {
    throw new BadRequestError(`'${name}' is outside 2000-01-01 .. 2200-01-01: got '${value}'`);
  }
  return ms;
}

export function parseRange(from: string, to: string, zone?: string): { fromMs: number; toMs: number } {
  const fromMs = parseTime(from, 'from', zone);
  const toMs = parseTime(to, 'to', zone);
  if (fromMs >= toMs) {
    throw new BadRequestError(`'from' must be before 'to' (from=${from}, to=${to})`);
  }
  return { fromMs, toMs };
}

export function checkZone(tz: string): string {
  if (!IANAZone.isValidZone(tz)) {
    throw new BadRequestError(`unknown time zone '${tz}': use an IANA name such as Europe/Berlin or UTC`);
  }
  return tz;
}

export function parseFields(list: string): HistoryField[] {
  const out: HistoryField[] = [];
  for (const raw of list.split(',')) {
    const name = raw.trim();
    if (!(HISTORY_FIELDS as readonly string[]).includes(name)) {
      throw new BadRequestError(`unknown field '${name}' in 'fields': known are ${HISTORY_FIELDS.join(', ')}`);
    }
    if (!out.includes(name as HistoryField)) out.push(name as HistoryField);
  }
  return out;
}

/** nWh as a JSON-safe Wh number; the exact value travels beside it as a decimal string. */
export function nwhToWh(nwh: bigint): number {
  const whole = nwh / 1_000_000_000n;
  const rest = nwh % 1_000_000_000n;
  return Number(whole) + Number(rest) / 1e9;
}
