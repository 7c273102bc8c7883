// Adapts the real host modules to the API's interfaces (deps.ts): the store's reader and CSV export become a
// MeasurementStore; each device link with its ingest becomes an entry of a DeviceDirectory (state, counters,
// calibration pushed with cmd_calibrate, captures assembled from capture_chunk frames); every ingest's
// 'window' and 'link' events are merged into one live emitter.
//
// Captures: live-captures.ts.
//
// The CLI's `serve` calls wireApi() and passes the result to buildApp().

import { EventEmitter } from 'node:events';
import Database from 'better-sqlite3';
import type { Frame, FrameFields } from '../protocol/codec.ts';
import { ACK_STATUS } from '../protocol/definition.ts';
import type { Ingest } from '../ingest/ingest.ts';
import type { WriteHealth } from '../store/store.ts';
import { StoreReader } from '../store/query.ts';
import { loadTariff, saveTariff } from '../store/tariff.ts';
import { CaptureArchive } from '../store/captures.ts';
import { readEvents } from '../store/events.ts';
import { readPqAggregates, readPqEvent, readPqEvents } from '../store/pq-query.ts';
import { pqCsv } from '../export/pq-csv.ts';
import { AdcDelayKeeper } from './adc-delay.ts';
import { CalibrationKeeper } from './calibration.ts';
import { captureCommand, LiveCaptures } from './live-captures.ts';
import { estimateExportRows, exportCsvViews, type ExportRequest } from '../export/csv.ts';
import {
  DeviceCommandError,
  UnknownDeviceError,
  type Calibration,
  type DeviceDirectory,
  type DeviceHealth,
  type DeviceInfo,
  type DeviceKind,
  type LinkEvent,
  type LinkState,
  type MeasurementStore,
} from './deps.ts';

/** The part of the store's write health the API shows. */
export type StorageHealth = Pick<WriteHealth, 'state' | 'detail'>;

/** What the API needs of a device link (server/device/link.ts's DeviceLink, or the simulated device's). */
export interface LinkLike {
  /** Sends a command and resolves with its ack (matched by seq); rejects on timeout or a closed link. */
  request(name: 'cmd_calibrate' | 'cmd_capture' | 'cmd_identify' | 'cmd_adc_delay', fields: Record<string, number>, opts?: { timeoutMs?: number }): Promise<Frame<'ack'>>;
  readonly counters: {
    frames: number; crcErrors: number; seqGaps: number; resets: number; reconnects?: number;
    bytes?: number; framingErrors?: number; protocolErrors?: number; oversize?: number;
  };
}

export interface ApiDevice {
  ingest: Ingest;
  /** Absent when the board cannot be talked to (e.g. it sits in its bootloader). */
  link: LinkLike | null;
  kind: DeviceKind;
  path: string | null;
  name?: string;
  /** State before any link event arrived, e.g. 'bootloader' with how to leave it. */
  initialState?: { state: LinkState; detail: string };
  /** The ADC capture point to set at every boot (adc-delay.ts); absent: the gateware's default stays. */
  adcReadDelay?: number;
}

export interface WiredApi {
  store: MeasurementStore;
  devices: DeviceDirectory;
  live: EventEmitter;
  close(): void;
}

const COMMAND_TIMEOUT_MS = 2000;
const RATE_WINDOW_MS = 5000;
const RATE_STEP_MS = 250;

/** Page cache of an export's connection, KiB. */
const EXPORT_CACHE_KIB = 1024;

/**
 * An export reads for as long as the client downloads, and better-sqlite3 refuses every other statement on a
 * connection while one of its iterators is open: on the writer's connection that would stall ingest for the
 * whole download. So each export gets its own read-only connection (WAL lets it read beside the writer),
 * closed when the export ends or the client goes away. Its page cache is kept small: an export reads each page
 * once, in order, and better-sqlite3's default (16 MB) would only fill up over a long export, to be counted in
 * the server's peak memory.
 */
function* exportOnOwnConnection(dbPath: string, q: ExportRequest): Generator<Uint8Array> {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    db.pragma(`cache_size = -${EXPORT_CACHE_KIB}`);
    yield* exportCsvViews(new StoreReader(db), q);
  } finally {
    db.close();
  }
}

/**
 * The store's reader as the API's MeasurementStore. Give `dbPath` whenever the reader shares its connection
 * with a writer (as in `serve`), so exports read on their own connection.
 */
export function storeFromReader(reader: StoreReader, dbPath?: string): MeasurementStore {
  return {
    history: (q) => {
      const a = reader.history(q);
      return { level: a.level, bucketMs: a.bucketMs, t: a.t, series: a.series };
    },
    exportCsv: (q) => (dbPath ? exportOnOwnConnection(dbPath, q) : exportCsvViews(reader, q)),
    estimateExportRows: (q) => estimateExportRows(reader, q),
    energy: (device, sinceMs) => reader.energy(device, sinceMs),
    energyInRanges: (device, ranges) => reader.energyInRanges(device, ranges),
    tariff: () => loadTariff(reader.db),
    setTariff: (t) => saveTariff(reader.db, t),
    captures: new CaptureArchive(reader.db),
    events: (device, fromMs, toMs, limit, kind) => readEvents(reader.db, reader.resolveDevice(device).id, fromMs, toMs, limit, kind),
    pqAggregates: (device, fromMs, toMs, limit) => readPqAggregates(reader.db, reader.resolveDevice(device).id, fromMs, toMs, limit),
    pqEvents: (device, fromMs, toMs, limit) => readPqEvents(reader.db, reader.resolveDevice(device).id, fromMs, toMs, limit),
    pqEvent: (device, id) => readPqEvent(reader.db, reader.resolveDevice(device).id, id),
    pqCsv: (device, what, fromMs, toMs, tz) => pqCsv(reader.db, reader.resolveDevice(device).id, what, fromMs, toMs, tz),
  };
}

/** One live device: state from link events, frames/s from counter deltas, captures from chunks. */
class LiveDevice {
  state: LinkState;
  detail: string;
  identify: FrameFields<'identify'> | undefined;
  /** The last status frame: the device's own health counters. */
  private status: FrameFields<'status'> | undefined;
  readonly captures: LiveCaptures;
  readonly calibration: CalibrationKeeper;
  private readonly adcDelay: AdcDelayKeeper | null;
  private readonly rate: { t: number; frames: number }[] = [];

  constructor(
    readonly d: ApiDevice,
    private readonly live: EventEmitter,
    log: (message: string) => void,
    private readonly storage: () => StorageHealth,
  ) {
    this.state = d.initialState?.state ?? (d.link ? 'connected' : 'absent');
    this.detail = d.initialState?.detail ?? '';
    d.ingest.on('window', this.onWindow);
    d.ingest.on('link', this.onLink);
    d.ingest.on('identify', this.onIdentify);
    d.ingest.on('frame', this.onFrame);
    this.captures = new LiveCaptures(() => ({
      device: this.id ?? '',
      kv: this.d.ingest.deviceRef?.kv ?? 0,
      ki: this.d.ingest.deviceRef?.ki ?? 0,
      sampleRateHz: this.sampleRate(),
    }));
    // After onIdentify: the link state is 'connected' by the time the keeper pushes.
    this.calibration = new CalibrationKeeper(d.ingest, (registers) => this.command('cmd_calibrate', { ...registers }), log);
    this.adcDelay = d.adcReadDelay === undefined ? null
      : new AdcDelayKeeper(d.ingest, d.adcReadDelay, (readDelay) => this.command('cmd_adc_delay', { read_delay: readDelay }), log);
  }

  get id(): string | undefined {
    return this.d.ingest.deviceId;
  }

  /** Mains frequency of the last window that measured one (for captures asked for in cycles). */
  freqHz: number | null = null;

  private readonly onWindow = (w: unknown) => {
    const f = (w as { freq_hz?: number | null }).freq_hz;
    if (typeof f === 'number' && f > 0) this.freqHz = f;
    this.live.emit('window', w);
  };
  private readonly onLink = (e: LinkEvent) => {
    this.state = e.state;
    this.detail = e.detail;
    if (this.id) this.live.emit('link', { ...e, device: this.id });
  };
  private readonly onIdentify = (e: { frame: FrameFields<'identify'> }) => {
    this.identify = e.frame;
    if (this.state !== 'connected') {
      this.state = 'connected';
      this.detail = '';
    }
  };
  private readonly onFrame = (f: Frame) => {
    if (f.name === 'capture_chunk') this.captures.onChunk(f as Frame<'capture_chunk'>);
    if (f.name === 'status') this.status = (f as Frame<'status'>).fields;
  };

  sampleRate(): number {
    const f = this.identify;
    return f ? f.sample_rate_num / f.sample_rate_den : 0;
  }

  /** Frames per second over the last few seconds, from the link's frame counter. */
  framesPerS(now: number): number {
    const frames = this.d.link?.counters.frames ?? 0;
    // One sample per RATE_STEP_MS at most, so a burst of API calls cannot grow the history.
    const last = this.rate[this.rate.length - 1];
    if (!last || now - last.t >= RATE_STEP_MS) this.rate.push({ t: now, frames });
    else last.frames = frames;
    while (this.rate.length > 2 && now - this.rate[0]!.t > RATE_WINDOW_MS) this.rate.shift();
    const first = this.rate[0]!;
    const dt = now - first.t;
    return dt > 0 ? ((frames - first.frames) * 1000) / dt : 0;
  }

  /** Chunks the decoder could not use. */
  private rejected(): number {
    const c = this.d.link?.counters;
    return (c?.crcErrors ?? 0) + (c?.framingErrors ?? 0) + (c?.protocolErrors ?? 0) + (c?.oversize ?? 0);
  }

  /** Whether the data gets through: the database first (it holds up every device), then the port's bytes. */
  health(): DeviceInfo['health'] {
    const s = this.storage();
    if (s.state === 'disk_full') return { state: 'disk_full', detail: s.detail };
    if (s.state === 'failing') return { state: 'write_failing', detail: s.detail };
    const c = this.d.link?.counters;
    const bytes = c?.bytes ?? 0;
    if (this.state === 'connected' && bytes > 0 && (c?.frames ?? 0) === 0) {
      return {
        state: 'no_valid_frames',
        detail: `${bytes} bytes received and none of them a crabwatt frame (${this.rejected()} rejected): ` +
          `is ${this.d.path ?? 'this port'} the crabwatt board, running current firmware?`,
      };
    }
    return { state: 'ok', detail: '' };
  }

  info(now: number): DeviceInfo {
    const c = this.d.link?.counters;
    return {
      id: this.id ?? '',
      name: this.d.name ?? (this.d.kind === 'simulated' ? 'simulated device' : this.d.kind === 'rtl' ? 'RTL twin' : (this.d.path ?? 'board')),
      kind: this.d.kind,
      path: this.d.path,
      state: this.state,
      detail: this.detail,
      health: this.health(),
      sampleRateHz: this.sampleRate(),
      counters: {
        bytes: c?.bytes ?? 0,
        rejected: this.rejected(),
        dropped: this.d.ingest.counters.dropped,
        frames: c?.frames ?? 0,
        crcErrors: c?.crcErrors ?? 0,
        seqGaps: c?.seqGaps ?? 0,
        resets: c?.resets ?? 0,
        reconnects: c?.reconnects ?? 0,
        framesPerS: Math.round(this.framesPerS(now) * 10) / 10,
        windows: this.d.ingest.counters.windows,
        duplicates: this.d.ingest.counters.duplicates,
      },
      warning: this.d.ingest.duplicateWarning,
      deviceHealth: this.deviceHealth(),
      ...(this.d.ingest.pq ? { pq: { ...this.d.ingest.pq.counters, ...this.d.ingest.pq.settings, error: this.d.ingest.pq.error } } : {}),
    };
  }

  private deviceHealth(): DeviceHealth | null {
    const s = this.status;
    if (!s) return null;
    return {
      framesDropped: s.frames_dropped,
      fifoOverflows: s.fifo_overflows,
      samplesDropped: s.samples_dropped,
      adcErrors: s.adc_errors,
      watchdogResets: s.watchdog_resets,
      linkStalls: s.link_stalls,
      uartRxOverruns: s.uart_rx_overruns,
    };
  }

  link(): LinkLike {
    if (!this.d.link || this.state !== 'connected') {
      throw new DeviceCommandError(`device is ${this.state}${this.detail ? `: ${this.detail}` : ''}; try again when it is connected`, 503);
    }
    return this.d.link;
  }

  async command(name: 'cmd_calibrate' | 'cmd_capture' | 'cmd_adc_delay', fields: Record<string, number>): Promise<number> {
    let ack: Frame<'ack'>;
    try {
      ack = await this.link().request(name, fields, { timeoutMs: COMMAND_TIMEOUT_MS });
    } catch (err) {
      if (err instanceof DeviceCommandError) throw err;
      const msg = (err as Error).message;
      throw new DeviceCommandError(`${name}: ${msg}`, /timeout|timed out/i.test(msg) ? 504 : 503);
    }
    const status = ack.fields.status;
    if (status === ACK_STATUS.OK) return ack.fields.value;
    if (status === ACK_STATUS.BUSY) throw new DeviceCommandError(`${name}: the device is busy (a capture in progress?); retry`, 409);
    const why = Object.entries(ACK_STATUS).find(([, v]) => v === status)?.[0] ?? `status ${status}`;
    throw new DeviceCommandError(`${name}: the device refused it (${why})`, 422);
  }

  close(): void {
    this.d.ingest.off('window', this.onWindow);
    this.d.ingest.off('link', this.onLink);
    this.d.ingest.off('identify', this.onIdentify);
    this.d.ingest.off('frame', this.onFrame);
    this.calibration.close();
    this.adcDelay?.close();
    this.captures.close();
  }
}

export function wireApi(opts: {
  reader: StoreReader;
  /** The database file, so exports read on their own connection (see storeFromReader). */
  dbPath?: string;
  devices: ApiDevice[];
  /** Whether the store's writes get through (Store.health); shown as every device's health. */
  storage?: () => StorageHealth;
  now?: () => number;
  /** Where what happens beside a request goes (a calibration pushed again after a reset). */
  log?: (message: string) => void;
}): WiredApi {
  const now = opts.now ?? Date.now;
  const live = new EventEmitter();
  // One listener per browser plus one per bench/test client; ingest never waits on any of them.
  live.setMaxListeners(0);
  const log = opts.log ?? (() => undefined);
  const storage = opts.storage ?? ((): StorageHealth => ({ state: 'ok', detail: '' }));
  const linked = opts.devices.map((d) => new LiveDevice(d, live, log, storage));
  const reader = opts.reader;

  const byId = (id: string): LiveDevice | undefined => linked.find((l) => l.id === id.toLowerCase());
  const stored = () => {
    try {
      return reader.devices();
    } catch {
      return [];
    }
  };

  const devices: DeviceDirectory = {
    list() {
      const t = now();
      // A connected port that has not identified is shown once something is wrong with it (only garbage).
      const out = linked.filter((l) => l.id !== undefined || l.state !== 'connected' || l.health().state !== 'ok').map((l) => l.info(t));
      // Devices only the database knows (seen before, not attached now) stay browsable for history.
      for (const s of stored()) {
        if (out.some((d) => d.id === s.id)) continue;
        out.push({
          id: s.id,
          name: s.name ?? s.id,
          kind: s.board === 0 ? 'simulated' : s.board === 3 ? 'rtl' : 'hardware',
          path: null,
          state: 'absent',
          detail: s.lastSeenMs ? `not attached; last seen ${new Date(s.lastSeenMs).toISOString()}` : 'not attached',
          health: { state: 'ok', detail: '' },
          sampleRateHz: s.fsNum / s.fsDen,
          counters: { bytes: 0, rejected: 0, dropped: 0, frames: 0, crcErrors: 0, seqGaps: 0, resets: 0, reconnects: 0, framesPerS: 0, windows: 0, duplicates: 0 },
          warning: null,
          deviceHealth: null,
        });
      }
      return out.filter(
        (d) => d.id !== '' || d.state === 'bootloader' || d.state === 'reconnecting' || d.state === 'disconnected' || d.health.state !== 'ok',
      );
    },
    get(id) {
      return devices.list().find((d) => d.id === id.toLowerCase() && d.id !== '');
    },
    calibration(id) {
      const l = byId(id);
      const current = l?.calibration.current();
      if (l && current) return { calibration: current, configSeq: l.calibration.configSeq };
      const s = stored().find((d) => d.id === id.toLowerCase());
      if (!s) throw new UnknownDeviceError(id);
      // Not attached: the scale is stored; the registers are what the host keeps, else the reset values.
      const registers = s.calibration ?? { v_offset: 0, i_offset: 0, v_gain: 16384, i_gain: 16384, phase: 0 };
      return { calibration: { ...registers, kv: s.kv, ki: s.ki }, configSeq: null };
    },
    async setCalibration(id, cal: Calibration) {
      const l = byId(id);
      if (!l) {
        if (stored().some((d) => d.id === id.toLowerCase())) {
          throw new DeviceCommandError(`device '${id}' is not attached: a calibration is pushed to a connected device`, 503);
        }
        throw new UnknownDeviceError(id);
      }
      return { configSeq: await l.calibration.set(cal) };
    },
    async requestCapture(id, req) {
      const l = byId(id);
      if (!l) throw new UnknownDeviceError(id);
      const { fields, decimation, takesMs } = captureCommand(req, {
        depth: l.identify?.capture_depth ?? 0,
        sampleRateHz: l.sampleRate(),
        freqHz: l.freqHz,
      });
      const captureId = await l.command('cmd_capture', fields);
      l.captures.start(captureId, decimation, takesMs);
      return { captureId };
    },
    capture(id, captureId) {
      return byId(id)?.captures.get(captureId);
    },
  };

  return {
    store: storeFromReader(reader, opts.dbPath),
    devices,
    live,
    close: () => linked.forEach((l) => l.close()),
  };
}
