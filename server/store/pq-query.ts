// Reading the power-quality rows (pq-rows.ts, schema.ts migration 5) for the API and the CSV export.

import type Database from 'better-sqlite3';
import { MAX_ORDER } from '../pq/iec61000-4-7.ts';
import { blobFloat64 } from './pq-rows.ts';

/** A stored 10-minute aggregate (IEC 61000-4-30), harmonics unpacked: index 0 = order 1. */
export interface PqAggregateRow {
  tStartMs: number;
  tEndMs: number;
  windows: number;
  flagged: boolean;
  vrms: number;
  irms: number;
  thdV: number | null;
  thdI: number | null;
  hV: number[];
  hI: number[];
  pH: number[];
}

/** A stored dip, swell or interruption, without its trace. */
export interface PqEventRow {
  id: number;
  kind: string;
  tStartMs: number;
  durationMs: number;
  extremeV: number;
  cut: boolean;
}

/** An event's Urms(1/2) values: seconds from its start, volts. */
export interface PqTrace {
  tS: number[];
  urmsV: number[];
}

interface AggregateRecord {
  t_start_ms: number; t_end_ms: number; windows: number; flagged: number; vrms: number; irms: number;
  thd_v: number | null; thd_i: number | null; harmonics: Buffer;
}
interface EventRecord { id: number; kind: string; t_start_ms: number; duration_ms: number; extreme_v: number; cut: number }

/** The aggregates starting in [fromMs, toMs), oldest first, at most `limit` after the first `offset`. */
export function readPqAggregates(db: Database.Database, device: number, fromMs: number, toMs: number, limit: number, offset = 0): PqAggregateRow[] {
  const rows = db
    .prepare(
      `SELECT t_start_ms, t_end_ms, windows, flagged, vrms, irms, thd_v, thd_i, harmonics FROM pq_aggregates
       WHERE device = ? AND t_start_ms >= ? AND t_start_ms < ? ORDER BY t_start_ms, id LIMIT ? OFFSET ?`,
    )
    .all(device, fromMs, toMs, limit, offset) as AggregateRecord[];
  return rows.map((r) => {
    const h = blobFloat64(r.harmonics);
    return {
      tStartMs: r.t_start_ms, tEndMs: r.t_end_ms, windows: r.windows, flagged: r.flagged === 1, vrms: r.vrms, irms: r.irms,
      thdV: r.thd_v, thdI: r.thd_i, hV: h.slice(0, MAX_ORDER), hI: h.slice(MAX_ORDER, 2 * MAX_ORDER), pH: h.slice(2 * MAX_ORDER),
    };
  });
}

const eventRow = (r: EventRecord): PqEventRow => ({
  id: r.id, kind: r.kind, tStartMs: r.t_start_ms, durationMs: r.duration_ms, extremeV: r.extreme_v, cut: r.cut === 1,
});

/** The events starting in [fromMs, toMs), oldest first, at most `limit` after the first `offset`. */
export function readPqEvents(db: Database.Database, device: number, fromMs: number, toMs: number, limit: number, offset = 0): PqEventRow[] {
  const rows = db
    .prepare(
      `SELECT id, kind, t_start_ms, duration_ms, extreme_v, cut FROM pq_events
       WHERE device = ? AND t_start_ms >= ? AND t_start_ms < ? ORDER BY t_start_ms, id LIMIT ? OFFSET ?`,
    )
    .all(device, fromMs, toMs, limit, offset) as EventRecord[];
  return rows.map(eventRow);
}

/** One event of the device with its Urms(1/2) trace, or undefined. */
export function readPqEvent(db: Database.Database, device: number, id: number): (PqEventRow & { trace: PqTrace }) | undefined {
  const r = db
    .prepare('SELECT id, kind, t_start_ms, duration_ms, extreme_v, cut, trace FROM pq_events WHERE device = ? AND id = ?')
    .get(device, id) as (EventRecord & { trace: Buffer }) | undefined;
  if (!r) return undefined;
  const pairs = blobFloat64(r.trace);
  return {
    ...eventRow(r),
    trace: { tS: pairs.filter((_, k) => k % 2 === 0), urmsV: pairs.filter((_, k) => k % 2 === 1) },
  };
}
