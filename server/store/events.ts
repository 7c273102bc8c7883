// The event log as the dashboard lists it: what the `events` table holds (serve's starts and stops, link
// changes, calibration changes, periods the database did not take writes; schema.ts migration 4) merged with
// what the store records anyway: device resets (a new epoch), energy the windows did not carry (energy_gaps) and
// the stretches with no data at all (holes in the 1 min rollups). Each has a time to open the history at.

import type Database from 'better-sqlite3';
import { nwhToWhString } from './energy.ts';

export interface StoredEvent {
  tMs: number;
  /** End of a period (disk full, no data); null for an instant. */
  untilMs: number | null;
  kind: string;
  detail: string;
}

const MINUTE_MS = 60_000;
const EPOCH_TEXT: Record<string, string> = {
  first: 'first seen by this database',
  boot_id: 'the device restarted (new boot id): its counters start again, the energy total carries on',
  index_backwards: 'the device restarted (its sample index went back without a new boot id)',
};

/**
 * Events of a device (and of the host) touching [fromMs, toMs), newest first, at most `limit`; of one kind only
 * when given (so a rare kind, e.g. calibration, is not crowded out of the limit by frequent ones).
 */
export function readEvents(db: Database.Database, deviceId: number, fromMs: number, toMs: number, limit: number, kind?: string): StoredEvent[] {
  const out: StoredEvent[] = [];
  const wanted = (k: string) => kind === undefined || kind === k;
  const logged = db
    .prepare(
      `SELECT t_ms, until_ms, kind, detail FROM events WHERE (device = ? OR device IS NULL) AND t_ms < ? AND coalesce(until_ms, t_ms) >= ?
       AND (? IS NULL OR kind = ?) ORDER BY t_ms DESC LIMIT ?`,
    )
    .all(deviceId, toMs, fromMs, kind ?? null, kind ?? null, limit) as { t_ms: number; until_ms: number | null; kind: string; detail: string }[];
  for (const e of logged) out.push({ tMs: e.t_ms, untilMs: e.until_ms, kind: e.kind, detail: e.detail });
  const epochs = db
    .prepare('SELECT started_ms, reason, boot_id FROM epochs WHERE device = ? AND started_ms >= ? AND started_ms < ? ORDER BY started_ms DESC LIMIT ?')
    .all(deviceId, fromMs, toMs, limit) as { started_ms: number; reason: string; boot_id: number }[];
  for (const e of epochs) {
    if (!wanted(e.reason === 'first' ? 'device_first_seen' : 'device_reset')) continue;
    out.push({ tMs: e.started_ms, untilMs: null, kind: e.reason === 'first' ? 'device_first_seen' : 'device_reset', detail: EPOCH_TEXT[e.reason] ?? e.reason });
  }
  const gaps = db
    .prepare('SELECT t_ms, energy_nwh, reason FROM energy_gaps WHERE device = ? AND t_ms >= ? AND t_ms < ? ORDER BY t_ms DESC LIMIT ?')
    .safeIntegers(true)
    .all(deviceId, fromMs, toMs, limit) as { t_ms: bigint; energy_nwh: bigint; reason: string }[];
  for (const g of gaps) {
    if (!wanted('energy_gap')) break;
    const why = g.reason === 'windows_lost' ? 'windows were lost (link or host down)' : 'the windows and the device accumulator disagreed';
    out.push({ tMs: Number(g.t_ms), untilMs: null, kind: 'energy_gap', detail: `${nwhToWhString(g.energy_nwh)} Wh booked from the device accumulator: ${why}` });
  }
  if (wanted('no_data')) out.push(...noDataStretches(db, deviceId, fromMs, toMs));
  return out.sort((a, b) => b.tMs - a.tMs).slice(0, limit);
}

/** Whole minutes without a window between two that had one (the 1 min rollups), inside [fromMs, toMs). */
function noDataStretches(db: Database.Database, deviceId: number, fromMs: number, toMs: number): StoredEvent[] {
  const out: StoredEvent[] = [];
  let prev: number | undefined;
  const rows = db
    .prepare('SELECT t_start_ms FROM rollups WHERE device = ? AND level = ? AND t_start_ms >= ? AND t_start_ms < ? ORDER BY t_start_ms')
    .pluck()
    .iterate(deviceId, MINUTE_MS, fromMs - MINUTE_MS, toMs) as Iterable<number>;
  for (const t of rows) {
    if (prev !== undefined && t - prev > 2 * MINUTE_MS) {
      const minutes = (t - prev - MINUTE_MS) / MINUTE_MS;
      out.push({ tMs: prev + MINUTE_MS, untilMs: t, kind: 'no_data', detail: `no measurements for ${minutes} min (serve stopped, the device unplugged or the link down)` });
    }
    prev = t;
  }
  return out;
}
