// Retention: raw windows and rollup levels older than their configured age are deleted; the power-quality
// aggregates and events go with the windows.

import type Database from 'better-sqlite3';
import { PACK_MS, PACKED_LEVEL_MS, type Packer } from './pack.ts';
import { ROLLUP_LEVELS } from './schema.ts';

/** Delete raw windows and rollups past their retention in one transaction. Returns rows deleted. */
export function deleteExpired(
  db: Database.Database,
  packer: Packer,
  windowRetentionMs: number | null,
  rollupRetentionMs: Partial<Record<string, number | null>>,
  nowMs: number,
): number {
  let deleted = 0;
  // Per device, so that each DELETE walks the (device, time) index over the expired rows only instead of
  // scanning every window: this runs on the ingest thread.
  const devices = db.prepare('SELECT id FROM devices').pluck().all() as number[];
  const windows = db.prepare('DELETE FROM windows WHERE device = ? AND t_end_ms < ?');
  const pqAggregates = db.prepare('DELETE FROM pq_aggregates WHERE device = ? AND t_end_ms < ?');
  const pqEvents = db.prepare('DELETE FROM pq_events WHERE device = ? AND t_start_ms + duration_ms < ?');
  const rollups = db.prepare('DELETE FROM rollups WHERE device = ? AND level = ? AND t_start_ms < ?');
  const packs = db.prepare('DELETE FROM rollup_packs WHERE device = ? AND t_start_ms < ?');
  const packRows = db.prepare('SELECT coalesce(sum(rows), 0) FROM rollup_packs WHERE device = ? AND t_start_ms < ?').pluck();
  // One transaction: a reader never sees an hour half unpacked, and a crash keeps the old state.
  db.transaction(() => {
    for (const device of devices) {
      if (windowRetentionMs !== null) {
        for (const stmt of [windows, pqAggregates, pqEvents]) deleted += stmt.run(device, nowMs - windowRetentionMs).changes;
      }
      for (const level of ROLLUP_LEVELS) {
        const keep = rollupRetentionMs[level.name];
        if (keep === undefined || keep === null) continue;
        const cutMs = nowMs - keep;
        if (level.ms === PACKED_LEVEL_MS) {
          // The 1 s level lives in packs and rows: whole hours before the cut go as packs; the hour the cut
          // falls in is unpacked first, so that its rows after the cut are kept (the backfill packs them again).
          const hourMs = Math.floor(cutMs / PACK_MS) * PACK_MS;
          if (hourMs < cutMs) packer.unpackHour(device, hourMs);
          deleted += Number(packRows.get(device, hourMs));
          packs.run(device, hourMs);
        }
        deleted += rollups.run(device, level.ms, cutMs).changes;
      }
    }
  })();
  return deleted;
}
