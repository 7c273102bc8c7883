// What the HTTP API needs from the rest of the host, as narrow interfaces.
//
// buildApp() (app.ts) takes objects implementing these; server/api/wire.ts adapts the real store, ingest
// and device links to them, and the API tests use small in-memory fakes. Keeping the seam here means the
// routes never reach into SQLite or serial ports directly, so every route is testable with app.inject.
//
// Units: times are Unix epoch milliseconds (UTC); physical values are SI (V, A, W, VA, var, Hz);
// energy crosses this seam as integer nanowatt-hours (bigint) so nothing here rounds it.

import type { PqExport } from '../export/pq-csv.ts';
import type { LivePqCounters } from '../pq/live.ts';
import type { PqSettings } from '../pq/settings.ts';
import type { PqAggregateRow, PqEventRow, PqTrace } from '../store/pq-query.ts';
import type { EventEmitter } from 'node:events';
import type { LiveWindow as IngestLiveWindow } from '../ingest/ingest.ts';
import type { CaptureArchive } from '../store/captures.ts';
import type { StoredEvent } from '../store/events.ts';
import type { Tariff } from '../store/tariff.ts';

/** Quantities a history query can ask for; each is stored per rollup bucket as mean/min/max. */
export const HISTORY_FIELDS = ['vrms', 'irms', 'p', 's', 'pf', 'n', 'freq_hz', 'v_dc', 'i_dc'] as const;
export type HistoryField = (typeof HISTORY_FIELDS)[number];

/** CSV intervals, identical to the CLI's `export --interval`. */
export const EXPORT_INTERVALS = ['raw', '1s', '1m', '15m', '1h', '1d'] as const;
export type ExportInterval = (typeof EXPORT_INTERVALS)[number];

export interface HistoryQuery {
  device: string;
  fromMs: number;
  toMs: number;
  /** The answer holds at most this many buckets. */
  points: number;
  fields: readonly HistoryField[];
}

export interface SeriesBuckets {
  mean: (number | null)[];
  min: (number | null)[];
  max: (number | null)[];
}

export interface HistoryResult {
  /** Rollup level the rows came from: 'raw' (windows), '1s', '1m', '15m', '1h' or '1d'. */
  level: string;
  /** Width of one folded bucket. */
  bucketMs: number;
  /** Start of each bucket; a bucket with no data has null in every series (a gap). */
  t: number[];
  series: Partial<Record<HistoryField, SeriesBuckets>>;
}

export interface ExportQuery {
  device: string;
  fromMs: number;
  toMs: number;
  interval: ExportInterval;
  /** IANA zone for the timestamps and for aligning buckets to the wall clock; already validated. */
  tz: string;
}

export interface MeasurementStore {
  /** Throws UnknownDeviceError for a device it never saw. */
  history(q: HistoryQuery): HistoryResult;
  /**
   * The CSV, header line first, exactly as `crabwatt export` writes it, as bytes (ASCII); pulled lazily so a
   * year of rows never sits in memory. A piece may be a view of the producer's own buffer, valid until the
   * next piece is pulled. `estimateExportRows` lets the dashboard show progress.
   */
  exportCsv(q: ExportQuery): Iterable<Uint8Array>;
  estimateExportRows(q: ExportQuery): number;
  /** Exact energy counters: since fromMs (e.g. local midnight) and since the device was first seen. */
  energy(device: string, sinceMs: number): { sinceNwh: bigint; totalNwh: bigint };
  /** Exact nWh booked in each [from, to) (whole seconds), read together (server/store/range-energy.ts). */
  energyInRanges(device: string, ranges: readonly (readonly [number, number])[]): bigint[];
  /** The stored tariff (server/store/tariff.ts), null until one is set. */
  tariff(): Tariff | null;
  /** Checks and stores a tariff: TariffError (400) for one that does not price every minute once, TariffWriteError (503). */
  setTariff(t: Tariff): Tariff;
  /** The device's event log touching [fromMs, toMs), newest first, of one kind when given (server/store/events.ts). */
  events(device: string, fromMs: number, toMs: number, limit: number, kind?: string): StoredEvent[];
  /** Captures kept in the database (server/store/captures.ts); its writes throw CaptureWriteError (503). */
  readonly captures: KeptCaptures;
  /** Power quality (server/store/pq-query.ts): 10-minute aggregates and voltage events starting in [fromMs, toMs), oldest first. */
  pqAggregates(device: string, fromMs: number, toMs: number, limit: number): PqAggregateRow[];
  pqEvents(device: string, fromMs: number, toMs: number, limit: number): PqEventRow[];
  /** One event with its Urms(1/2) trace; undefined when the device has none with this id. */
  pqEvent(device: string, id: number): (PqEventRow & { trace: PqTrace }) | undefined;
  /** The CSV of server/export/pq-csv.ts, header line first, a chunk at a time. */
  pqCsv(device: string, what: PqExport, fromMs: number, toMs: number, tz: string): Iterable<string>;
}

export type KeptCaptures = Pick<CaptureArchive, 'keep' | 'list' | 'info' | 'get' | 'rename' | 'remove'>;

export type DeviceKind = 'hardware' | 'simulated' | 'rtl';
/**
 * ok; no_valid_frames: bytes arrive but none is a crabwatt frame (wrong port, wrong firmware); disk_full /
 * write_failing: the database does not take what arrives (it waits in memory, then is dropped and counted).
 */
export const DATA_HEALTH = ['ok', 'no_valid_frames', 'disk_full', 'write_failing'] as const;
export type DataHealth = (typeof DATA_HEALTH)[number];
export type LinkState = 'connected' | 'disconnected' | 'reconnecting' | 'bootloader' | 'absent';

export interface LinkCounters {
  /** Bytes read from the port, delimiters and garbage included. */
  bytes: number;
  /** Chunks between delimiters that were not a usable frame (bad COBS or CRC, other protocol, oversize). */
  rejected: number;
  /** Windows ingest could not book: the database could not take them (disk full, memory queue full). */
  dropped: number;
  frames: number;
  crcErrors: number;
  seqGaps: number;
  resets: number;
  reconnects: number;
  /** Frames per second over the last few seconds. */
  framesPerS: number;
  /** Windows stored since serve started. */
  windows: number;
  /** Windows received that were stored already (not stored again), since serve started. */
  duplicates: number;
}

/** The health counters of the device's last status frame (docs/protocol.md, "status"), since its reset. */
export interface DeviceHealth {
  framesDropped: number;
  fifoOverflows: number;
  samplesDropped: number;
  adcErrors: number;
  watchdogResets: number;
  /** Times a link stopped taking bytes for 500 ms and frames went to the other one. */
  linkStalls: number;
  /** Bytes the UART dropped at a full receive FIFO: commands lost on the line. */
  uartRxOverruns: number;
}

export interface DeviceInfo {
  id: string;
  name: string;
  kind: DeviceKind;
  path: string | null;
  state: LinkState;
  /** Human sentence for the state, e.g. how to leave the bootloader. */
  detail: string;
  /** Whether its data gets through to the database (beside the link state: a port can be up and useless). */
  health: { state: DataHealth; detail: string };
  counters: LinkCounters;
  /** The device's own counters from its last status frame; null until it has sent one. */
  deviceHealth: DeviceHealth | null;
  sampleRateHz: number;
  /** A condition the user must see though the link is fine (e.g. duplicates dominate: nothing new is stored). */
  warning: string | null;
  /** The power-quality analysis' counters (server/pq/live.ts) and why it cannot run; absent when it is off. */
  pq?: PqCounters;
}

export interface PqCounters extends LivePqCounters, PqSettings {
  error: string | null;
}

/** Device calibration registers (docs/dsp.md) plus the host-side scale of the analog front end. */
export interface Calibration {
  v_offset: number;
  i_offset: number;
  v_gain: number;
  i_gain: number;
  phase: number;
  /** Volts and amperes per ADC LSB. */
  kv: number;
  ki: number;
}

/** Longest span a capture may be asked to cover (duration_ms; D = 65535 at 4 Msps spans 67 s). */
export const MAX_CAPTURE_SPAN_MS = 60_000;
/** Largest decimation the protocol carries (u16). */
export const MAX_DECIMATION = 65535;

export interface CaptureRequest {
  pairs: number;
  trigger: 'immediate' | 'v_rising' | 'v_falling' | 'i_rising' | 'i_falling';
  level: number;
  pretrigger: number;
  /** Trigger hysteresis, ADC LSB (docs/protocol.md "Captures"). */
  hysteresis: number;
  /**
   * The capture's span, at most one of: D itself, a duration, or mains cycles at the measured
   * frequency; the device directory turns it into D. None: D = 1, every sample.
   */
  decimation?: number;
  durationMs?: number;
  cycles?: number;
}

export interface Capture {
  id: number;
  device: string;
  state: 'pending' | 'complete' | 'failed';
  detail: string;
  requestedAtMs: number;
  /** Calibrated samples in ADC LSB; multiply by kv / ki for volts and amperes. */
  v: number[];
  i: number[];
  kv: number;
  ki: number;
  sampleRateHz: number;
  /** Samples between two pairs: pair k is sample firstIndex + k·decimation. */
  decimation: number;
  /** Sample indices of the first pair and of the trigger pair (0 until complete). */
  firstIndex: number;
  triggerIndex: number;
  /** Position of the trigger within v/i (pairs before it are pretrigger). */
  triggerOffset: number;
}

export interface DeviceDirectory {
  list(): DeviceInfo[];
  get(id: string): DeviceInfo | undefined;
  /**
   * The calibration the host keeps for the device, and the device configuration (config_seq of the current boot)
   * from which its windows are measured with it; null when the device has not confirmed it (not attached, a push
   * pending or failed).
   */
  calibration(id: string): { calibration: Calibration; configSeq: number | null };
  /**
   * Pushes the registers to the device and, once it accepted them, stores them with the scale; resolves with the
   * config_seq from which they are in force. On any failure the previous calibration stays in force.
   */
  setCalibration(id: string, cal: Calibration): Promise<{ configSeq: number | null }>;
  requestCapture(id: string, req: CaptureRequest): Promise<{ captureId: number }>;
  capture(id: string, captureId: number): Capture | undefined;
}

/**
 * One closed window in physical units, as the live stream sends it: the part of ingest's live window the
 * API forwards, taken from ingest's declaration so the two cannot drift.
 */
export type LiveWindow = Pick<
  IngestLiveWindow,
  'device' | 'tMs' | 'samples' | 'vrms' | 'irms' | 'p' | 's' | 'pf' | 'n' | 'freq_hz' | 'energy_nwh' | 'flags' | 'config_seq' | 'receivedAtMs' | 'v_dc' | 'i_dc'
>;

export interface LinkEvent {
  device: string;
  state: LinkState;
  detail: string;
}

/** Emits 'window' (LiveWindow) and 'link' (LinkEvent); the API only listens. */
export type LiveSource = EventEmitter;

/** A typed error the routes turn into 404 instead of 500. */
export class UnknownDeviceError extends Error {
  constructor(readonly device: string) {
    super(`unknown device '${device}': GET /api/devices lists the known ones`);
    this.name = 'UnknownDeviceError';
  }
}

/** A request the device refused or could not answer (bad arguments, busy, timed out, link down). */
export class DeviceCommandError extends Error {
  constructor(
    message: string,
    readonly statusCode: 409 | 422 | 503 | 504,
  ) {
    super(message);
    this.name = 'DeviceCommandError';
  }
}
