// Kept captures: a waveform capture (server/api/wire.ts assembles it from capture_chunk frames and keeps only the
// last few, in memory) copied into the `captures` table (schema.ts) with a name, so it outlives serve and can be
// listed, renamed, exported and reopened. The samples are stored as the device sent them (calibrated ADC LSB,
// little-endian int32) with the scale kv / ki in force when they were taken, so volts and amperes are exact
// later whatever calibration follows. Each write is one statement: a crash keeps the capture whole or not at all.

import type Database from 'better-sqlite3';

/** Longest name, in characters (the API's schema says the same). */
export const CAPTURE_NAME_MAX = 80;

export interface KeptCaptureInfo {
  id: number;
  device: string;
  name: string;
  /** When it was armed (Unix ms): the capture's own time. */
  capturedAtMs: number;
  keptAtMs: number;
  pairs: number;
  sampleRateHz: number;
  /** Samples between two pairs: the capture's rate is sampleRateHz / decimation. */
  decimation: number;
}

export interface KeptCapture extends KeptCaptureInfo {
  /** Calibrated samples in ADC LSB; volts = v·kv, amperes = i·ki. */
  v: number[];
  i: number[];
  kv: number;
  ki: number;
  firstIndex: number;
  triggerIndex: number;
  triggerOffset: number;
}

export type CaptureToKeep = Omit<KeptCapture, 'id' | 'keptAtMs' | 'pairs'>;

/** The database did not take the write (a full disk); nothing changed (the API answers 503). */
export class CaptureWriteError extends Error {
  override readonly name = 'CaptureWriteError';
}

const INFO_COLUMNS = 'id, device, name, captured_ms, kept_ms, pairs, sample_rate_hz, decimation';

interface InfoRow {
  id: number;
  device: string;
  name: string;
  captured_ms: number;
  kept_ms: number;
  pairs: number;
  sample_rate_hz: number;
  decimation: number;
}

interface FullRow extends InfoRow {
  kv: number;
  ki: number;
  first_index: number;
  trigger_index: number;
  trigger_offset: number;
  v: Buffer;
  i: Buffer;
}

export class CaptureArchive {
  constructor(private readonly db: Database.Database) {}

  keep(c: CaptureToKeep, nowMs: number): KeptCaptureInfo {
    if (c.v.length !== c.i.length) throw new Error(`a capture has as many current as voltage samples (${c.i.length} ≠ ${c.v.length})`);
    const id = this.write(() =>
      this.db
        .prepare(
          `INSERT INTO captures (device, name, captured_ms, kept_ms, pairs, sample_rate_hz, decimation, kv, ki, first_index, trigger_index, trigger_offset, v, i)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          c.device.toLowerCase(), c.name, c.capturedAtMs, nowMs, c.v.length, c.sampleRateHz, c.decimation, c.kv, c.ki,
          c.firstIndex, c.triggerIndex, c.triggerOffset, packSamples(c.v), packSamples(c.i),
        ).lastInsertRowid,
    );
    return this.info(Number(id))!;
  }

  /** Newest first; of one device when given. */
  list(device: string | undefined, limit: number): KeptCaptureInfo[] {
    const rows = (device === undefined
      ? this.db.prepare(`SELECT ${INFO_COLUMNS} FROM captures ORDER BY captured_ms DESC, id DESC LIMIT ?`).all(limit)
      : this.db.prepare(`SELECT ${INFO_COLUMNS} FROM captures WHERE device = ? ORDER BY captured_ms DESC, id DESC LIMIT ?`).all(device.toLowerCase(), limit)) as InfoRow[];
    return rows.map(infoOf);
  }

  info(id: number): KeptCaptureInfo | undefined {
    const row = this.db.prepare(`SELECT ${INFO_COLUMNS} FROM captures WHERE id = ?`).get(id) as InfoRow | undefined;
    return row && infoOf(row);
  }

  get(id: number): KeptCapture | undefined {
    const r = this.db.prepare('SELECT * FROM captures WHERE id = ?').get(id) as FullRow | undefined;
    if (!r) return undefined;
    return {
      ...infoOf(r), kv: r.kv, ki: r.ki, firstIndex: r.first_index, triggerIndex: r.trigger_index, triggerOffset: r.trigger_offset,
      v: unpackSamples(r.v), i: unpackSamples(r.i),
    };
  }

  /** The renamed capture, or undefined when there is none with this id. */
  rename(id: number, name: string): KeptCaptureInfo | undefined {
    const changed = this.write(() => this.db.prepare('UPDATE captures SET name = ? WHERE id = ?').run(name, id).changes);
    return changed ? this.info(id) : undefined;
  }

  /** False when there was none with this id. */
  remove(id: number): boolean {
    return this.write(() => this.db.prepare('DELETE FROM captures WHERE id = ?').run(id).changes) > 0;
  }

  private write<T>(f: () => T): T {
    try {
      return f();
    } catch (err) {
      throw new CaptureWriteError(`the database did not take the change (${(err as Error).message}): free disk space and retry; nothing was changed`);
    }
  }
}

function infoOf(r: InfoRow): KeptCaptureInfo {
  return {
    id: r.id, device: r.device, name: r.name, capturedAtMs: r.captured_ms, keptAtMs: r.kept_ms, pairs: r.pairs,
    sampleRateHz: r.sample_rate_hz, decimation: r.decimation,
  };
}

function packSamples(s: readonly number[]): Buffer {
  const b = Buffer.alloc(s.length * 4);
  s.forEach((x, k) => b.writeInt32LE(x, k * 4));
  return b;
}

function unpackSamples(b: Buffer): number[] {
  const out = new Array<number>(b.length / 4);
  for (let k = 0; k < out.length; k++) out[k] = b.readInt32LE(k * 4);
  return out;
}
