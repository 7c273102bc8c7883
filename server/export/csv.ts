// CSV export, streamed: rollup records are read from SQLite a block at a time (an hourly pack of 1 s rows, or a
// page of rows), folded into the requested interval and formatted as bytes into one buffer (csv-writer.ts),
// handed out in chunks of ~64 KiB (pipe.ts sends them to a stream), so a year of 1 s rows never sits in memory
// and no row allocates.
//
// Columns (the header line is exactly CSV_HEADER):
// Column names carry their unit (vrms_v, p_w, n_var, …).
//   timestamp   ISO-8601 with the offset of the requested zone. For an interval it is the START of the bucket
//               (buckets aligned to the zone's wall clock: 15 min buckets start at :00/:15/:30/:45 local time,
//               1 d buckets at local midnight, so a DST day has 23 or 25 hours); for `raw` it is the END of the
//               window (the instant the device closed it), with milliseconds.
//   vrms_v, irms_a  sample-weighted mean over the bucket (the window's own value for raw)
//   p_w, p_min_w, p_max_w  active power, mean and the extremes of the windows' values
//   s_va   pf (empty when undefined, e.g. no current)   n_var (non-active power)
//   freq_hz (empty when no window had two crossings)    v_dc_v, i_dc_a
//   energy_wh   exact decimal from the integer nWh counter (windows and booked gaps), 9 decimals
//   samples     device samples covered
//   coverage    samples / nominal samples of the bucket (empty for raw); COVERAGE_NOTE says why it can pass 1
//   flags       OR of the windows' WINDOW_FLAG bits (docs/dsp.md); flag_names the same bits by name, '|'-separated
// A bucket no window ended in has no row: an outage is a run of missing timestamps (OUTAGE_NOTE).
//
// Number format. energy_wh, samples and flags are exact. The other numbers (vrms … i_dc, p_min, p_max,
// coverage) are rounded to 9 significant digits — 1 part in 10^9, three orders below the instrument's ppm
// resolution — and written as the shortest decimal of that rounded value: exactly JavaScript's
// String(Number(x.toPrecision(9))), e.g. 230.000001, 0.5, 1, 1.23456789e-7 (exponent form below 1e-6 and
// from 1e21, as String() writes). The digits are produced with integer arithmetic straight into the output
// bytes; the few doubles whose rounding cannot be decided that way (within 2^-22 of a tie) take the
// toPrecision path itself, so the output is that expression's, bit for bit.

import type { Writable } from 'node:stream';
import { DateTime, IANAZone } from 'luxon';
import { CsvWriter } from './csv-writer.ts';
import { CHUNK_BYTES, pipeChunks } from './pipe.ts';
import { foldQuantity, type FoldRow } from '../store/fold.ts';
import { PACK_ENERGY, PACK_FLAGS, PACK_SAMPLES, PACK_STATS, PACK_STRIDE, PACK_T } from '../store/pack.ts';
import { windowFlagNames } from '../protocol/window-flags.ts';
import { QUANTITIES } from '../store/schema.ts';
import type { SourceLevel, StoreReader } from '../store/query.ts';

export const EXPORT_INTERVALS = ['raw', '1s', '1m', '15m', '1h', '1d'] as const;
export type ExportInterval = (typeof EXPORT_INTERVALS)[number];

export const CSV_HEADER =
  'timestamp,vrms_v,irms_a,p_w,p_min_w,p_max_w,s_va,pf,n_var,freq_hz,v_dc_v,i_dc_a,energy_wh,samples,coverage,flags,flag_names';

/**
 * Why coverage can read above 1. A window counts whole in the bucket its end falls in (the energy is booked at
 * that instant, exactly once), so a bucket also holds the part of the window that straddles its start.
 */
export const COVERAGE_NOTE =
  'coverage is above 1 by up to one window in a bucket that holds a window straddling its start (a window counts ' +
  'whole where it ends, so its energy is booked once): 1.0033 for a 200 ms window in a 1 min bucket; the ' +
  'neighbouring bucket reads as much below 1, and the sum over buckets is exact';

/** What an outage looks like in the file. */
export const OUTAGE_NOTE =
  'a bucket in which no window ended (the device or host was off) has no row: an outage is a run of missing ' +
  'timestamps, and a bucket with part of an outage has coverage below 1';

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

/** UTC offsets in use anywhere (the tz database's range), minutes: −12:00 … +14:00. */
const MIN_OFFSET_MIN = -12 * 60;
const MAX_OFFSET_MIN = 14 * 60;

/**
 * Why the UTC offset written at the end of an ISO-8601 time is not one, or undefined when it is fine or absent.
 * luxon reads +99:00 and +05:99 as offsets of 99 h and 6 h 39 min; no clock on Earth shows them.
 */
export function offsetProblem(text: string): string | undefined {
  const m = /T[^+-]*([+-])(\d{2})(?::?(\d{2}))?$/.exec(text.trim());
  if (!m) return undefined;
  const minutes = Number(m[3] ?? 0);
  const total = (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + minutes);
  if (minutes >= 60 || total < MIN_OFFSET_MIN || total > MAX_OFFSET_MIN) {
    return `${m[1]}${m[2]}${m[3] === undefined ? '' : `:${m[3]}`} is not a UTC offset (they run from -12:00 to +14:00)`;
  }
  return undefined;
}

/** An ISO-8601 instant; without an offset it is read as wall time in `tz`. */
export function parseInstant(text: string, tz: string, what: string): number {
  const dt = DateTime.fromISO(text, { zone: tz, setZone: false });
  const problem = dt.isValid ? offsetProblem(text) : `${dt.invalidExplanation ?? dt.invalidReason}`;
  if (problem !== undefined) {
    throw new ExportArgumentError(
      `--${what} '${text}' is not an ISO-8601 date or time (${problem}); e.g. 2026-03-29 or 2026-03-29T12:00+02:00`,
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

/**
 * Zone offsets, cached over a span known to have one offset: a UTC hour whose start and end have the same
 * offset (no zone changes twice within an hour), else the 15-minute block (every zone's transitions fall on
 * quarter hours). A zone lookup costs tens of µs (Intl), so it is done about once an hour.
 */
class OffsetCache {
  private readonly zone: IANAZone;
  private from = NaN;
  private to = NaN;
  private offsetMs = 0;
  private lastAt = NaN;
  private lastOffsetMs = 0;
  constructor(tz: string) {
    this.zone = IANAZone.create(tz);
  }

  private lookup(tMs: number): number {
    if (tMs !== this.lastAt) {
      this.lastAt = tMs;
      this.lastOffsetMs = this.zone.offset(tMs) * 60_000;
    }
    return this.lastOffsetMs;
  }

  at(tMs: number): number {
    if (tMs >= this.from && tMs < this.to) return this.offsetMs;
    const hour = Math.floor(tMs / 3_600_000) * 3_600_000;
    const atStart = this.lookup(hour);
    const atEnd = this.lookup(hour + 3_600_000);
    if (atStart === atEnd) {
      this.from = hour;
      this.to = hour + 3_600_000;
      this.offsetMs = atStart;
    } else {
      const block = Math.floor(tMs / 900_000) * 900_000;
      this.from = block;
      this.to = block + 900_000;
      this.offsetMs = this.zone.offset(block) * 60_000;
    }
    return this.offsetMs;
  }
}

const pad2 = (n: number): string => (n < 10 ? `0${n}` : `${n}`);
/** ASCII tens and ones digit of 0 … 99 (the clock's seconds and milliseconds). */
const TENS = Uint8Array.from({ length: 100 }, (_, k) => 48 + Math.floor(k / 10));
const ONES = Uint8Array.from({ length: 100 }, (_, k) => 48 + (k % 10));

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

/** Local days in `tz` (23, 24 or 25 hours long), the last one looked up cached. */
function localDays(tz: string): BucketOf {
  let cached = { start: NaN, end: NaN };
  return (tMs) => {
    if (tMs >= cached.start && tMs < cached.end) return cached;
    const day = DateTime.fromMillis(tMs, { zone: tz }).startOf('day');
    cached = { start: day.toMillis(), end: day.plus({ days: 1 }).toMillis() };
    return cached;
  };
}

const IDX = Object.fromEntries(QUANTITIES.map((q, k) => [q, k])) as Record<(typeof QUANTITIES)[number], number>;
/** Output columns vrms … i_dc after p_min/p_max, in CSV order, as quantity indices. */
const [VRMS, IRMS, P, S, PF, N, FREQ, VDC, IDC] = [IDX.vrms, IDX.irms, IDX.p, IDX.s, IDX.pf, IDX.n, IDX.freq_hz, IDX.v_dc, IDX.i_dc];
const Q = QUANTITIES.length;

/**
 * Instants as the export writes them (for tests): ISO-8601 in `tz`, with milliseconds for raw rows. One writer
 * serves every call, caches included, as in an export.
 */
export function instantFormatter(tz: string, withMs: boolean): (tMs: number) => string {
  const w = new CsvWriter(64);
  const iso = new IsoWriter(checkZone(tz), withMs);
  return (tMs) => {
    iso.write(w, tMs);
    return w.take();
  };
}

/** ISO-8601 timestamps with the zone's offset, into a CsvWriter: the date and offset text cached, the clock in digits. */
class IsoWriter {
  private readonly offsets: OffsetCache;
  private dayKey = NaN;
  private dayText = '';
  private offKey = NaN;
  private offText = '';
  constructor(
    tz: string,
    private readonly withMs: boolean,
  ) {
    this.offsets = new OffsetCache(tz);
  }

  offsetMs(tMs: number): number {
    return this.offsets.at(tMs);
  }

  write(w: CsvWriter, tMs: number): void {
    const off = this.offsets.at(tMs);
    this.writeLocal(w, tMs + off, off);
  }

  /** write() of the instant whose local time is `local` under the offset `off` (offsetMs of that instant). */
  writeLocal(w: CsvWriter, local: number, off: number): void {
    // "YYYY-MM-DDTHH:MM:" is cached per local minute: a 1 s export changes it every 60th row.
    const minute = Math.floor(local / 60_000);
    if (minute !== this.minuteKey || off !== this.offKey) this.startMinute(minute, off);
    const b = w.buf;
    let p = w.pos;
    const prefix = this.prefix;
    for (let k = 0; k < 17; k++) b[p++] = prefix[k]!;
    const msOfMinute = local - minute * 60_000;
    const s = Math.floor(msOfMinute / 1000);
    b[p++] = TENS[s]!;
    b[p++] = ONES[s]!;
    if (this.withMs) {
      const ms = msOfMinute - s * 1000;
      const hundreds = Math.floor(ms / 100);
      b[p++] = 46;
      b[p++] = 48 + hundreds;
      const rest = ms - hundreds * 100;
      b[p++] = TENS[rest]!;
      b[p++] = ONES[rest]!;
    }
    const suffix = this.suffix;
    for (let k = 0; k < suffix.length; k++) b[p++] = suffix[k]!;
    w.pos = p;
  }

  private minuteKey = NaN;
  private readonly prefix = new Uint8Array(17);
  private suffix = new Uint8Array(0);

  private startMinute(minute: number, off: number): void {
    this.minuteKey = minute;
    const day = Math.floor(minute / 1440);
    if (day !== this.dayKey) {
      this.dayKey = day;
      this.dayText = new Date(day * 86_400_000).toISOString().slice(0, 11);
    }
    const minuteOfDay = minute - day * 1440;
    const text = `${this.dayText}${pad2(Math.floor(minuteOfDay / 60))}:${pad2(minuteOfDay % 60)}:`;
    for (let k = 0; k < 17; k++) this.prefix[k] = text.charCodeAt(k);
    if (off !== this.offKey) {
      this.offKey = off;
      const offMin = Math.abs(off) / 60_000;
      this.offText = off === 0 ? 'Z' : `${off < 0 ? '-' : '+'}${pad2(Math.floor(offMin / 60))}:${pad2(offMin % 60)}`;
      this.suffix = Uint8Array.from(this.offText, (c) => c.charCodeAt(0));
    }
  }
}

const flagTexts = new Map<number, string>();

/** The row's last two cells, flags and flag_names, and its newline; few combinations occur, each is joined once. */
function writeFlags(w: CsvWriter, flags: number): void {
  w.integer(flags);
  w.byte(44);
  if (flags !== 0) {
    let text = flagTexts.get(flags);
    if (text === undefined) {
      text = windowFlagNames(flags).join('|');
      flagTexts.set(flags, text);
    }
    w.ascii(text);
  }
  w.byte(10);
}

/**
 * One output row's accumulator, over typed arrays (no Bucket object and no BigInt per row). The fold is the one
 * of Bucket.add, step for step, so the numbers (and their text) are the same.
 */
class RowFold {
  rows = 0;
  samples = 0;
  flags = 0;
  energy = 0;
  /** Set when the energy sum leaves the safe-integer range: then it is summed exactly as a bigint. */
  energyBig: bigint | null = null;
  readonly wsum = new Float64Array(Q);
  readonly weight = new Float64Array(Q);
  readonly min = new Float64Array(Q);
  readonly max = new Float64Array(Q);

  reset(): void {
    this.rows = 0;
    this.samples = 0;
    this.flags = 0;
    this.energy = 0;
    this.energyBig = null;
    this.wsum.fill(0);
    this.weight.fill(0);
    this.min.fill(NaN);
    this.max.fill(NaN);
  }

  addEnergy(e: number | bigint): void {
    if (this.energyBig === null && typeof e === 'number') {
      const sum = this.energy + e;
      if (Number.isSafeInteger(sum)) {
        this.energy = sum;
        return;
      }
      this.energyBig = BigInt(this.energy);
    }
    this.energyBig = (this.energyBig ?? BigInt(this.energy)) + BigInt(e);
  }

  /** A rollup row: stats as float64 [wsum, weight, min, max] per quantity, from st[at] on. */
  addStats(samples: number, energy: number | bigint, flags: number, st: ArrayLike<number>, at: number): void {
    this.rows++;
    this.samples += samples;
    this.addEnergy(energy);
    this.flags |= flags;
    for (let k = 0, o = at; k < Q; k++, o += 4) foldQuantity(this, k, st[o]!, st[o + 1]!, st[o + 2]!, st[o + 3]!);
  }

  /** A fold row (a window in the FoldRow shape: wsum = value·samples, weight = samples, min = max = value). */
  addFoldRow(row: FoldRow): void {
    this.rows++;
    this.samples += row.samples;
    this.addEnergy(row.energyNwh);
    this.flags |= row.flags;
    for (let k = 0; k < Q; k++) foldQuantity(this, k, row.wsum[k]!, row.weight[k]!, row.min[k]!, row.max[k]!);
  }

  writeMean(w: CsvWriter, k: number): void {
    const wt = this.weight[k]!;
    if (wt > 0) w.sig9(this.wsum[k]! / wt);
    w.byte(44);
  }

  /** Everything after the timestamp, newline included. */
  writeRow(w: CsvWriter, coverage: number | null): void {
    w.reserve(512);
    w.byte(44);
    this.writeMean(w, VRMS);
    this.writeMean(w, IRMS);
    this.writeMean(w, P);
    const pDefined = this.weight[P]! > 0;
    if (pDefined) w.sig9(this.min[P]!);
    w.byte(44);
    if (pDefined) w.sig9(this.max[P]!);
    w.byte(44);
    this.writeMean(w, S);
    this.writeMean(w, PF);
    this.writeMean(w, N);
    this.writeMean(w, FREQ);
    this.writeMean(w, VDC);
    this.writeMean(w, IDC);
    w.wh(this.energyBig ?? this.energy);
    w.byte(44);
    w.integer(this.samples);
    w.byte(44);
    if (coverage !== null) w.sig9(coverage);
    w.byte(44);
    writeFlags(w, this.flags);
  }
}

/**
 * One rollup record (pack.ts layout, from `o` on) as a row, everything after the timestamp: RowFold.writeRow
 * of a fold of that one record, without the fold (0 + x and 0 | f change no value, NaN min/max give way).
 */
function writeRecordRow(w: CsvWriter, d: Float64Array, o: number, energy: number | bigint, coverage: number): void {
  const st = o + PACK_STATS;
  w.byte(44);
  writeRecordMean(w, d, st, VRMS);
  writeRecordMean(w, d, st, IRMS);
  writeRecordMean(w, d, st, P);
  const pDefined = d[st + 4 * P + 1]! > 0;
  if (pDefined) w.sig9(d[st + 4 * P + 2]!);
  w.byte(44);
  if (pDefined) w.sig9(d[st + 4 * P + 3]!);
  w.byte(44);
  writeRecordMean(w, d, st, S);
  writeRecordMean(w, d, st, PF);
  writeRecordMean(w, d, st, N);
  writeRecordMean(w, d, st, FREQ);
  writeRecordMean(w, d, st, VDC);
  writeRecordMean(w, d, st, IDC);
  w.wh(energy);
  w.byte(44);
  w.integer(0 + d[o + PACK_SAMPLES]!);
  w.byte(44);
  w.sig9(coverage);
  w.byte(44);
  writeFlags(w, d[o + PACK_FLAGS]! | 0);
}

function writeRecordMean(w: CsvWriter, d: Float64Array, st: number, k: number): void {
  const weight = d[st + 4 * k + 1]!;
  // As the fold: defined where the weight is positive (0 adds nothing; NaN fails the test there too).
  if (weight > 0) w.sig9((0 + d[st + 4 * k]!) / weight);
  w.byte(44);
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
export function* exportCsvChunks(reader: StoreReader, req: ExportRequest, chunkChars = CHUNK_BYTES): Generator<string> {
  yield* csvChunks(reader, req, chunkChars, (w) => w.take());
}

/**
 * The same CSV as exportCsvChunks, as views of the export's own byte buffer (the header in the first chunk):
 * each is valid until the next one is pulled, for a consumer that copies the bytes anyway (pipe.ts copies them
 * into the buffers it writes to the stream), so no chunk allocates.
 */
export function* exportCsvViews(reader: StoreReader, req: ExportRequest, chunkBytes = CHUNK_BYTES): Generator<Uint8Array> {
  yield* csvChunks(reader, req, chunkBytes, (w) => w.takeView());
}

/** The export's one formatting loop; `take` turns the writer's bytes into a chunk and empties it. */
function* csvChunks<T>(reader: StoreReader, req: ExportRequest, chunkChars: number, take: (w: CsvWriter) => T): Generator<T> {
  checkRange(req);
  const fs = reader.sampleRate(req.device);
  const out = new CsvWriter(Math.max(1024, chunkChars + 1024));
  out.ascii(`${CSV_HEADER}\n`);
  const fold = new RowFold();
  if (req.interval === 'raw') {
    const stamp = new IsoWriter(req.tz, true);
    for (const row of reader.sourceRows(req.device, 'raw', req.fromMs, req.toMs)) {
      fold.reset();
      fold.addFoldRow(row);
      out.reserve(64);
      stamp.write(out, row.tMs);
      fold.writeRow(out, null);
      if (out.pos >= chunkChars) yield take(out);
    }
    yield take(out);
    return;
  }
  // A bucket is exported when its start lies in [from, to), always whole: the read extends to the edges of the
  // first and last buckets so that neither is cut.
  const clock = new IsoWriter(req.tz, false);
  const dayOf = req.interval === '1d' ? localDays(req.tz) : undefined;
  const lengthMs = req.interval === '1d' ? 0 : INTERVAL_MS[req.interval];
  /** Start of the local bucket holding tMs; its end goes to bucketEnd. */
  let bucketEnd = NaN;
  const bucketStart = (tMs: number): number => {
    if (dayOf) {
      const b = dayOf(tMs);
      bucketEnd = b.end;
      return b.start;
    }
    const off = clock.offsetMs(tMs);
    const start = Math.floor((tMs + off) / lengthMs) * lengthMs - off;
    bucketEnd = start + lengthMs;
    return start;
  };
  const readFrom = bucketStart(req.fromMs);
  bucketStart(req.toMs - 1);
  const readTo = bucketEnd;
  fold.reset();
  let start = NaN;
  let end = NaN;
  const oneToOne = req.interval === '1s';
  const oneNominal = (1000 / 1000) * fs;
  const emit = (): void => {
    if (fold.rows > 0 && start >= req.fromMs && start < req.toMs) {
      const nominal = ((end - start) / 1000) * fs;
      out.reserve(64);
      clock.write(out, start);
      fold.writeRow(out, fold.samples / nominal);
    }
  };
  for (const block of reader.rollupBlocks(req.device, sourceLevel(req.interval) as Exclude<SourceLevel, 'raw'>, readFrom, readTo)) {
    const d = block.data;
    const big = block.bigEnergy;
    for (let r = block.begin; r < block.end; r++) {
      const o = r * PACK_STRIDE;
      const tMs = d[o + PACK_T]!;
      const off = clock.offsetMs(tMs);
      const local = tMs + off;
      // A 1 s export of 1 s rows: each row is its own bucket (zone offsets are whole seconds), written straight
      // from the record with the very arithmetic the fold would do on one row. (local % 1000 in doubles is a
      // call to fmod; the floor is a few instructions, exact for integers below 2^53.)
      if (oneToOne && local === Math.floor(local / 1000) * 1000) {
        if (fold.rows > 0) {
          emit();
          fold.reset();
          start = NaN;
          end = NaN;
        }
        if (tMs >= req.fromMs && tMs < req.toMs) {
          out.reserve(576);
          clock.writeLocal(out, local, off);
          writeRecordRow(out, d, o, big?.get(r) ?? d[o + PACK_ENERGY]!, d[o + PACK_SAMPLES]! / oneNominal);
          if (out.pos >= chunkChars) yield take(out);
        }
        continue;
      }
      // Rows come in time order: only a row past the current bucket's end can open a new one.
      if (!(tMs < end && tMs >= start)) {
        const s = bucketStart(tMs);
        if (s !== start) {
          emit();
          if (out.pos >= chunkChars) yield take(out);
          fold.reset();
          start = s;
          end = bucketEnd;
        }
      }
      fold.addStats(d[o + PACK_SAMPLES]!, big?.get(r) ?? d[o + PACK_ENERGY]!, d[o + PACK_FLAGS]!, d, o + PACK_STATS);
    }
  }
  emit();
  yield take(out);
}

/**
 * Write the export to a stream (pipe.ts: a fixed set of buffers, back-pressure by their write callbacks).
 * Resolves with the bytes written; rejects with StreamClosedError (its `code` the stream's, e.g. EPIPE when the
 * reader of a pipe went away) and then stops reading the database.
 */
export function writeCsv(reader: StoreReader, req: ExportRequest, out: Writable): Promise<number> {
  return pipeChunks(exportCsvViews(reader, req), out);
}
