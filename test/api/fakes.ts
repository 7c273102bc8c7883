// In-memory stand-ins for the store and the device links, so the API's own behaviour (validation,
// status codes, streaming, auth, fan-out) is tested without SQLite or serial ports.

import { EventEmitter } from 'node:events';
import Database from 'better-sqlite3';
import {
  DeviceCommandError,
  UnknownDeviceError,
  type Calibration,
  type Capture,
  type CaptureRequest,
  type DeviceDirectory,
  type DeviceInfo,
  type ExportQuery,
  type HistoryQuery,
  type HistoryResult,
  type LiveWindow,
  type MeasurementStore,
} from '../../server/api/deps.ts';
import { CaptureArchive } from '../../server/store/captures.ts';
import type { StoredEvent } from '../../server/store/events.ts';
import { migrate } from '../../server/store/schema.ts';
import { PQ_CSV_HEADERS, type PqExport } from '../../server/export/pq-csv.ts';
import type { PqAggregateRow, PqEventRow, PqTrace } from '../../server/store/pq-query.ts';
import { checkTariff, type Tariff } from '../../server/store/tariff.ts';

export const DEVICE = '00c0ffee00000001';
export const T0 = Date.UTC(2026, 10, 1);

function memoryDatabase(): Database.Database {
  const db = new Database(':memory:');
  migrate(db);
  return db;
}

export class FakeStore implements MeasurementStore {
  readonly historyCalls: HistoryQuery[] = [];
  readonly exportCalls: ExportQuery[] = [];
  /** Rows the fake export yields (one per second from fromMs). */
  exportRows = 10;
  /** The real archive, on a database in memory (its SQL is what the capture routes are tested with). */
  readonly db = memoryDatabase();
  readonly captures = new CaptureArchive(this.db);

  private known(device: string): void {
    if (device !== DEVICE) throw new UnknownDeviceError(device);
  }

  history(q: HistoryQuery): HistoryResult {
    this.known(q.device);
    this.historyCalls.push(q);
    const bucketMs = Math.ceil((q.toMs - q.fromMs) / q.points);
    const n = Math.ceil((q.toMs - q.fromMs) / bucketMs);
    const t = Array.from({ length: n }, (_, k) => q.fromMs + k * bucketMs);
    const series: HistoryResult['series'] = {};
    for (const f of q.fields) {
      // A gap in the middle third so clients can see nulls.
      const val = (k: number) => (k >= n / 3 && k < (2 * n) / 3 ? null : 100 + k);
      series[f] = {
        mean: t.map((_, k) => val(k)),
        min: t.map((_, k) => (val(k) === null ? null : val(k)! - 1)),
        max: t.map((_, k) => (val(k) === null ? null : val(k)! + 1)),
      };
    }
    return { level: '1s', bucketMs, t, series };
  }

  *exportCsv(q: ExportQuery): Iterable<Uint8Array> {
    this.known(q.device);
    this.exportCalls.push(q);
    yield Buffer.from('timestamp,vrms,irms,p\n');
    for (let k = 0; k < this.exportRows; k++) yield Buffer.from(`${new Date(q.fromMs + k * 1000).toISOString()},230.0,1.0,230.0\n`);
  }

  estimateExportRows(q: ExportQuery): number {
    this.known(q.device);
    return this.exportRows;
  }

  energy(device: string, sinceMs: number): { sinceNwh: bigint; totalNwh: bigint } {
    this.known(device);
    void sinceMs;
    return { sinceNwh: 1_500_000_000n, totalNwh: 123_456_789_012_345n };
  }

  /** 1 Wh per hour of each range (whole seconds), so a test can predict every sum. */
  energyInRanges(device: string, ranges: readonly (readonly [number, number])[]): bigint[] {
    this.known(device);
    return ranges.map(([from, to]) => (BigInt(to - from) * 1_000_000_000n) / 3_600_000n);
  }

  storedTariff: Tariff | null = null;
  tariff(): Tariff | null {
    return this.storedTariff;
  }

  events(device: string, fromMs: number, toMs: number, limit: number, kind?: string): StoredEvent[] {
    this.known(device);
    return [{ tMs: toMs - 1000, untilMs: null, kind: 'serve_start', detail: 'crabwatt serve started' }, { tMs: fromMs, untilMs: fromMs + 60_000, kind: 'no_data', detail: 'no measurements for 1 min' }]
      .filter((e) => kind === undefined || e.kind === kind).slice(0, limit);
  }

  pqAggregates(device: string, fromMs: number, _toMs: number, limit: number): PqAggregateRow[] {
    this.known(device);
    const h = (fundamental: number) => Array.from({ length: 50 }, (_, k) => (k === 0 ? fundamental : k % 2 === 0 ? fundamental / (k + 1) / 10 : 0));
    return [{ tStartMs: fromMs, tEndMs: fromMs + 600_000, windows: 3000, flagged: false, vrms: 230, irms: 2, thdV: 0.03, thdI: 0.2, hV: h(230), hI: h(2), pH: h(460) }].slice(0, limit);
  }

  pqEvents(device: string, fromMs: number, _toMs: number, limit: number): PqEventRow[] {
    this.known(device);
    return [{ id: 1, kind: 'dip', tStartMs: fromMs + 1000, durationMs: 120, extremeV: 150, cut: false }].slice(0, limit);
  }

  pqEvent(device: string, id: number): (PqEventRow & { trace: PqTrace }) | undefined {
    this.known(device);
    if (id !== 1) return undefined;
    return { id: 1, kind: 'dip', tStartMs: 1000, durationMs: 120, extremeV: 150, cut: false, trace: { tS: [-0.01, 0, 0.01], urmsV: [230, 150, 230] } };
  }

  pqCsv(device: string, what: PqExport): Iterable<string> {
    this.known(device);
    return [`${PQ_CSV_HEADERS[what]}\n`];
  }

  setTariff(t: Tariff): Tariff {
    this.storedTariff = checkTariff(t);
    return t;
  }
}

export class FakeDevices implements DeviceDirectory {
  info: DeviceInfo = {
    id: DEVICE,
    name: 'sim',
    kind: 'simulated',
    path: null,
    state: 'connected',
    detail: '',
    sampleRateHz: 4_000_000,
    health: { state: 'ok', detail: '' },
    counters: { bytes: 0, rejected: 0, dropped: 0, frames: 10, crcErrors: 0, seqGaps: 0, resets: 0, reconnects: 0, framesPerS: 11, windows: 9, duplicates: 0 },
    warning: null,
    deviceHealth: {
      framesDropped: 1, fifoOverflows: 2, samplesDropped: 3, adcErrors: 4, watchdogResets: 5, linkStalls: 6, uartRxOverruns: 7,
    },
  };
  cal: Calibration = { v_offset: 0, i_offset: 0, v_gain: 16384, i_gain: 16384, phase: 0, kv: 0.05, ki: 0.004 };
  pushed: Calibration[] = [];
  captures = new Map<number, Capture>();
  nextCapture = 1;
  /** Makes the next command fail like a device would. */
  failNext: DeviceCommandError | null = null;

  list(): DeviceInfo[] {
    return [this.info];
  }
  get(id: string): DeviceInfo | undefined {
    return id === DEVICE ? this.info : undefined;
  }
  calibration(id: string): { calibration: Calibration; configSeq: number | null } {
    if (id !== DEVICE) throw new UnknownDeviceError(id);
    return { calibration: this.cal, configSeq: this.pushed.length || null };
  }
  async setCalibration(id: string, cal: Calibration): Promise<{ configSeq: number | null }> {
    if (id !== DEVICE) throw new UnknownDeviceError(id);
    if (this.failNext) {
      const e = this.failNext;
      this.failNext = null;
      throw e;
    }
    this.pushed.push(cal);
    this.cal = { ...cal };
    return { configSeq: this.pushed.length };
  }
  captureRequests: CaptureRequest[] = [];
  async requestCapture(id: string, req: CaptureRequest): Promise<{ captureId: number }> {
    if (id !== DEVICE) throw new UnknownDeviceError(id);
    this.captureRequests.push(req);
    if (this.failNext) {
      const e = this.failNext;
      this.failNext = null;
      throw e;
    }
    const captureId = this.nextCapture++;
    const v = Array.from({ length: req.pairs }, (_, k) => Math.round(1000 * Math.sin((2 * Math.PI * k) / 80)));
    this.captures.set(captureId, {
      id: captureId,
      device: id,
      state: 'complete',
      detail: '',
      requestedAtMs: T0,
      v,
      i: v.map((x) => Math.round(x / 2)),
      kv: this.cal.kv,
      ki: this.cal.ki,
      sampleRateHz: 4_000_000,
      decimation: req.decimation ?? 1,
      firstIndex: 1_000_000,
      triggerIndex: 1_000_000 + req.pretrigger * (req.decimation ?? 1),
      triggerOffset: req.pretrigger,
    });
    return { captureId };
  }
  capture(id: string, captureId: number): Capture | undefined {
    return id === DEVICE ? this.captures.get(captureId) : undefined;
  }
}

export function liveWindow(tMs: number, p = 1000): LiveWindow {
  return {
    device: DEVICE,
    tMs,
    samples: 800_000,
    vrms: 230,
    irms: p / 230,
    p,
    s: p * 1.05,
    pf: 1 / 1.05,
    n: 100,
    freq_hz: 50,
    energy_nwh: 55_555n,
    flags: 0,
    config_seq: 0,
    receivedAtMs: Date.now(),
    v_dc: 0.01,
    i_dc: -0.002,
  };
}

export function fakes() {
  return { store: new FakeStore(), devices: new FakeDevices(), live: new EventEmitter() };
}
