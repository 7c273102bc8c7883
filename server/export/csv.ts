// CSV export, streamed: rows are pulled from SQLite one at a time, folded into the requested interval and
// written out in chunks, so a year of 1 s rows never sits in memory.
//
// Columns (the header line is exactly CSV_HEADER):
//   timestamp   ISO-8601 with the offset of the requested zone. For an interval it is the START of the bucket
//               (buckets aligned to the zone's wall clock: 15 min buckets start at :00/:15/:30/:45 local time,
//               1 d buckets at local midnight, so a DST day has 23 or 25 hours); for `raw` it is the END of the
//               window (the instant the device closed it), with milliseconds.
//   vrms, irms  V, A: sample-weighted mean over the bucket (the window's own value for raw)
//   p, p_min, p_max   W: active power, mean and the extremes of the windows' values
//   s           VA     pf   (empty when undefined, e.g. no current)     n   var (non-active power)
//   freq_hz     Hz (empty when no window had two crossings)       v_dc, i_dc   V, A
//   energy_wh   exact decimal from the integer nWh counter (windows and booked gaps), 9 decimals
//   samples     device samples covered
//   coverage    samples / nominal samples of the bucket (1 = no loss; empty for raw)
//   flags       OR of the windows' WINDOW_FLAG bits (docs/dsp.md)

import type { Writable } from 'node:stream';
import { DateTime, IANAZone } from 'luxon';
import { nwhToWhString } from '../store/energy.ts';
import { Bucket, type FoldRow } from '../store/fold.ts';
import { QUANTITIES } from '../store/schema.ts';
import type { SourceLevel, StoreReader } from '../store/query.ts';

export const EXPORT_INTERVALS = ['raw', '1s', '1m', '15m', '1h', '1d'] as const;
export type ExportInterval = (typeof EXPORT_INTERVALS)[number];

export const CSV_HEADER =
  'timestamp,vrms,irms,p,p_min,p_max,s,pf,n,freq_hz,v_dc,i_dc,energy_wh,samples,coverage,flags';

export class ExportArgumentError extends Error {
  override readonly name = 'ExportArgumentError';
}

export interface ExportRequest {
  device: string;
  fromMs: number;
  toMs: number;
  interval: ExportInterval;
  tz: string;
}

/** Longest range one export may cover, a guard against a typo'd year. */
const MAX_RANGE_MS = 50 * 366 * 86_400_000;

export function checkZone(tz: string): string {
  if (!IANAZone.isValidZone(tz)) {
    throw new ExportArgumentError(`unknown time zone '${tz}': use an IANA name such as Europe/Berlin, America/New_York or UTC`);
  }
  return tz;
}

export function parseInterval(interval: string): ExportInterval {
  if (!(EXPORT_INTERVALS as readonly string[]).includes(interval)) {
    throw new ExportArgumentError(`unknown interval '${interval}': use one of ${EXPORT_INTERVALS.join(', ')}`);
  }
  return interval as ExportInterval;
}

/** An ISO-8601 instant; without an offset it is read as wall time in `tz`. */
export function parseInstant(text: string, tz: string, what: string): number {
  const dt = DateTime.fromISO(text, { zone: tz, setZone: false });
  if (!dt.isValid) {
    throw new ExportArgumentError(
      `--${what} '${text}' is not an ISO-8601 date or time (${dt.invalidExplanation ?? dt.invalidReason}); e.g. 2026-03-29 or 2026-03-29T12:00+02:00`,
    );
  }
  return dt.toMillis();
}

export function parseExportRequest(args: { device: string; from: string; to: string; interval: string; tz: string }): ExportRequest {
  const tz = checkZone(args.tz);
  const interval = parseInterval(args.interval);
  const fromMs = parseInstant(args.from, tz, 'from');
  const toMs = parseInstant(args.to, tz, 'to');
  return checkRange({ device: args.device, fromMs, toMs, interval, tz });
}

export function checkRange(req: ExportRequest): ExportRequest {
  checkZone(req.tz);
  parseInterval(req.interval);
  if (!Number.isFinite(req.fromMs) || !Number.isFinite(req.toMs) || !(req.toMs > req.fromMs)) {
    throw new ExportArgumentError('the export range is empty: --from must be before --to');
  }
  if (req.toMs - req.fromMs > MAX_RANGE_MS) throw new ExportArgumentError('the export range is longer than 50 years');
  return req;
}

/** Zone offsets, cached per 15-minute block: every zone's transitions fall on quarter hours. */
class OffsetCache {
  private readonly zone: IANAZone;
  private block = NaN;
  private offsetMs = 0;
  constructor(tz: string) {
    this.zone = IANAZone.create(tz);
  }
  at(tMs: number): number {
    const block = Math.floor(tMs / 900_000);
    if (block !== this.block) {
      this.block = block;
      this.offsetMs = this.zone.offset(tMs) * 60_000;
    }
    return this.offsetMs;
  }
}

const pad2 = (n: number): string => (n < 10 ? `0${n}` : `${n}`);

/** Formats instants as ISO-8601 with the zone's offset; the date part is cached per local day. */
export class IsoFormatter {
  private readonly offsets: OffsetCache;
  private dayKey = NaN;
  private dayText = '';
  constructor(
    tz: string,
    private readonly withMs: boolean,
  ) {
    this.offsets = new OffsetCache(tz);
  }

  offsetMs(tMs: number): number {
    return this.offsets.at(tMs);
  }

  format(tMs: number): string {
    const off = this.offsets.at(tMs);
    const local = tMs + off;
    const day = Math.floor(local / 86_400_000);
    if (day !== this.dayKey) {
      this.dayKey = day;
      this.dayText = new Date(day * 86_400_000).toISOString().slice(0, 11);
    }
    let msOfDay = local - day * 86_400_000;
    const ms = msOfDay % 1000;
    msOfDay = (msOfDay - ms) / 1000;
    const s = msOfDay % 60;
    const m = ((msOfDay - s) / 60) % 60;
    const h = Math.floor(msOfDay / 3600);
    const offMin = Math.abs(off) / 60_000;
    const offText = off === 0 ? 'Z' : `${off < 0 ? '-' : '+'}${pad2(Math.floor(offMin / 60))}:${pad2(offMin % 60)}`;
    const frac = this.withMs ? `.${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}` : '';
    return `${this.dayText}${pad2(h)}:${pad2(m)}:${pad2(s)}${frac}${offText}`;
  }
}

const INTERVAL_MS: Record<Exclude<ExportInterval, 'raw' | '1d'>, number> = {
  '1s': 1_000, '1m': 60_000, '15m': 900_000, '1h': 3_600_000,
};

/**
 * The stored level an interval is read from. 1 h and 1 d are folded from 15 min rollups: those are aligned to
 * the wall clock in every zone (all offsets in use are whole quarter hours), whereas UTC hours and days are not
 * (India, DST days).
 */
function sourceLevel(interval: ExportInterval): SourceLevel {
  return interval === '1h' || interval === '1d' ? '15m' : interval;
}

/** Start and end (UTC ms) of the local bucket holding tMs. */
type BucketOf = (tMs: number) => { start: number; end: number };

function bucketFunction(interval: Exclude<ExportInterval, 'raw'>, tz: string, offsets: IsoFormatter): BucketOf {
  if (interval === '1d') {
    let cached = { start: NaN, end: NaN };
    return (tMs) => {
      if (tMs >= cached.start && tMs < cached.end) return cached;
      const day = DateTime.fromMillis(tMs, { zone: tz }).startOf('day');
      cached = { start: day.toMillis(), end: day.plus({ days: 1 }).toMillis() };
      return cached;
    };
  }
  const lengthMs = INTERVAL_MS[interval];
  return (tMs) => {
    const off = offsets.offsetMs(tMs);
    const start = Math.floor((tMs + off) / lengthMs) * lengthMs - off;
    return { start, end: start + lengthMs };
  };
}

const fmt = (x: number | null): string => (x === null ? '' : String(x));

const IDX = Object.fromEntries(QUANTITIES.map((q, k) => [q, k])) as Record<(typeof QUANTITIES)[number], number>;
const [VRMS, IRMS, P, S, PF, N, FREQ, VDC, IDC] = [IDX.vrms, IDX.irms, IDX.p, IDX.s, IDX.pf, IDX.n, IDX.freq_hz, IDX.v_dc, IDX.i_dc];

function csvLine(time: string, b: Bucket, coverage: number | null): string {
  return (
    `${time},${fmt(b.mean(VRMS))},${fmt(b.mean(IRMS))},${fmt(b.mean(P))},${fmt(b.minOf(P))},${fmt(b.maxOf(P))},` +
    `${fmt(b.mean(S))},${fmt(b.mean(PF))},${fmt(b.mean(N))},${fmt(b.mean(FREQ))},${fmt(b.mean(VDC))},${fmt(b.mean(IDC))},` +
    `${nwhToWhString(b.energyNwh)},${b.samples},${coverage === null ? '' : String(coverage)},${b.flags}\n`
  );
}

/** Source rows folded into one output row, roughly (a DST day has 92 or 100 quarter hours). */
const FOLD_RATIO: Partial<Record<ExportInterval, number>> = { '1h': 4, '1d': 96 };

/** Rows an export will produce, roughly (for progress displays): exact for 1 s … 15 min, near for 1 h and 1 d. */
export function estimateExportRows(reader: StoreReader, req: ExportRequest): number {
  checkRange(req);
  const rows = reader.countSourceRows(req.device, sourceLevel(req.interval), req.fromMs, req.toMs);
  const ratio = FOLD_RATIO[req.interval];
  // Folded: partly covered buckets at the edges of the data make it a little more.
  return ratio === undefined ? rows : Math.min(rows, Math.ceil(rows / ratio) + 1);
}

/**
 * The CSV as text chunks of about `chunkChars`, header first. Lazy: each chunk is produced when pulled.
 * Rows cover [fromMs, toMs): buckets by their start, raw windows by their end.
 */
export function* exportCsvChunks(reader: StoreReader, req: ExportRequest, chunkChars = 64 * 1024): Generator<string> {
  checkRange(req);
  const fs = reader.sampleRate(req.device);
  const formatter = new IsoFormatter(req.tz, req.interval === 'raw');
  let chunk = `${CSV_HEADER}\n`;
  const bucket = new Bucket();
  if (req.interval === 'raw') {
    for (const row of reader.sourceRows(req.device, 'raw', req.fromMs, req.toMs)) {
      bucket.reset();
      bucket.add(row);
      chunk += csvLine(formatter.format(row.tMs), bucket, null);
      if (chunk.length >= chunkChars) {
        yield chunk;
        chunk = '';
      }
    }
    yield chunk;
    return;
  }
  const bucketOf = bucketFunction(req.interval, req.tz, formatter);
  // A bucket is exported when its start lies in [from, to), always whole: the read extends to the edges of the
  // first and last buckets so that neither is cut.
  const readFrom = bucketOf(req.fromMs).start;
  const readTo = bucketOf(req.toMs - 1).end;
  let current = { start: NaN, end: NaN };
  const emit = (): string => {
    const nominal = ((current.end - current.start) / 1000) * fs;
    return csvLine(formatter.format(current.start), bucket, bucket.samples / nominal);
  };
  for (const row of reader.sourceRows(req.device, sourceLevel(req.interval), readFrom, readTo) as Iterable<FoldRow>) {
    const b = bucketOf(row.tMs);
    if (b.start !== current.start) {
      if (bucket.rows > 0 && current.start >= req.fromMs && current.start < req.toMs) {
        chunk += emit();
        if (chunk.length >= chunkChars) {
          yield chunk;
          chunk = '';
        }
      }
      bucket.reset();
      current = b;
    }
    bucket.add(row);
  }
  if (bucket.rows > 0 && current.start >= req.fromMs && current.start < req.toMs) chunk += emit();
  yield chunk;
}

/**
 * Write the export to a stream, respecting back-pressure. Resolves with the bytes written; rejects with the
 * stream's error (e.g. EPIPE when the reader of a pipe went away), and then stops reading the database.
 */
export async function writeCsv(reader: StoreReader, req: ExportRequest, out: Writable): Promise<number> {
  let failure: Error | undefined;
  const onError = (err: Error): void => {
    failure ??= err;
  };
  out.on('error', onError);
  try {
    let bytes = 0;
    for (const chunk of exportCsvChunks(reader, req)) {
      if (failure) throw failure;
      bytes += Buffer.byteLength(chunk);
      if (!out.write(chunk)) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            out.off('drain', done);
            out.off('error', done);
            out.off('close', done);
            resolve();
          };
          out.once('drain', done);
          out.once('error', done);
          out.once('close', done);
        });
      }
    }
    if (failure) throw failure;
    return bytes;
  } finally {
    out.off('error', onError);
  }
}
