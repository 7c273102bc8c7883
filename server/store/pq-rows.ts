// The power-quality rows (schema.ts migration 5): the 10-minute aggregates and voltage events of the live
// analysis (server/pq/live.ts), queued and written in the store's batch transaction as a FlushParticipant,
// so they reach the disk exactly when the windows booked with them do. A kill -9 loses at most the queue
// (flushIntervalMs, as for windows); a batch that fails stays queued for the next try; the unique keys keep
// an interval or event analysed again (a serve restarted while the device ran on) from being stored twice.

import type Database from 'better-sqlite3';
import { INTERVAL_S } from '../pq/aggregate.ts';
import { MAX_ORDER } from '../pq/iec61000-4-7.ts';
import { pqTimeMs, type PqBatch } from '../pq/live.ts';
import type { FlushParticipant } from './write-queue.ts';

/** h_v, h_i and p_h of orders 1 … 50, in this order, as one BLOB of little-endian float64. */
export const HARMONIC_VALUES = 3 * MAX_ORDER;

export function float64Blob(values: readonly number[]): Buffer {
  const buf = Buffer.alloc(8 * values.length);
  values.forEach((x, k) => buf.writeDoubleLE(x, 8 * k));
  return buf;
}

export function blobFloat64(blob: Buffer): number[] {
  const out = new Array<number>(blob.length / 8);
  for (let k = 0; k < out.length; k++) out[k] = blob.readDoubleLE(8 * k);
  return out;
}

const INSERT_AGGREGATE = `INSERT INTO pq_aggregates (device, epoch, interval_index, start_index, end_index, t_start_ms, t_end_ms,
  windows, flagged, vrms, irms, thd_v, thd_i, harmonics) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
  ON CONFLICT (device, epoch, interval_index) DO NOTHING`;
const INSERT_EVENT = `INSERT INTO pq_events (device, epoch, kind, start_index, end_index, t_start_ms, duration_ms, extreme_v, cut, trace)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device, epoch, kind, start_index) DO NOTHING`;

export class PqRows implements FlushParticipant {
  private readonly aggregates: unknown[][] = [];
  private readonly events: unknown[][] = [];
  private readonly deviceIds = new Map<string, number>();
  private readonly insertAggregate: Database.Statement;
  private readonly insertEvent: Database.Statement;
  private readonly deviceId: Database.Statement;
  /** Rows handed to the transaction now running: removed from the queues once it committed. */
  private written = { aggregates: 0, events: 0 };

  constructor(db: Database.Database, private readonly requestFlush: () => void) {
    this.insertAggregate = db.prepare(INSERT_AGGREGATE);
    this.insertEvent = db.prepare(INSERT_EVENT);
    this.deviceId = db.prepare('SELECT id FROM devices WHERE device_id = ?').pluck();
  }

  get pending(): boolean {
    return this.aggregates.length > 0 || this.events.length > 0;
  }

  /** Queue a batch of the live analysis for the next transaction. */
  add(batch: PqBatch): void {
    const c = batch.clock;
    const device = this.deviceRow(c.device);
    const intervalSamples = (INTERVAL_S * 1000) / c.msPerSample;
    for (const a of batch.aggregates) {
      const harmonics = float64Blob([...a.h_v, ...a.h_i, ...a.p_h]);
      this.aggregates.push([
        device, c.epoch, Math.round(Math.floor(a.start / intervalSamples) * intervalSamples), a.start, a.end,
        pqTimeMs(c, a.start), pqTimeMs(c, a.end), a.windows, a.flagged ? 1 : 0, a.vrms, a.irms, a.thd_v, a.thd_i, harmonics,
      ]);
    }
    for (const e of batch.events) {
      this.events.push([
        device, c.epoch, e.kind, e.start, e.end, pqTimeMs(c, e.start), (e.end - e.start) * c.msPerSample,
        e.extremeV, e.cutByGap ? 1 : 0, float64Blob(e.trace),
      ]);
    }
    this.requestFlush();
  }

  write(): void {
    for (const row of this.aggregates) this.insertAggregate.run(row);
    for (const row of this.events) this.insertEvent.run(row);
    this.written = { aggregates: this.aggregates.length, events: this.events.length };
  }

  committed(): void {
    this.aggregates.splice(0, this.written.aggregates);
    this.events.splice(0, this.written.events);
    this.written = { aggregates: 0, events: 0 };
  }

  private deviceRow(hex: string): number {
    let id = this.deviceIds.get(hex);
    if (id === undefined) {
      id = this.deviceId.get(hex) as number;
      this.deviceIds.set(hex, id);
    }
    return id;
  }
}
