// GET /metrics: the Prometheus text exposition of every device, through prom-client.
//
// Each scrape reads the state at that moment (the device directory's counters and link state, the store's
// energy ledger, the last live window of each device) into a registry of its own, so one process can hold
// several apps (tests) and nothing is counted between scrapes. The energy counter is the ledger on disk
// (devices.total_nwh, written in the same transaction as the windows it sums), divided once into Wh: a scraped
// value is exactly Number(total_nwh) / 1e9 of that moment, never a sum of floats.

import { Counter, Gauge, Registry } from 'prom-client';
import type { DeviceDirectory, DeviceInfo, LinkState, PqCounters, LiveSource, LiveWindow, MeasurementStore } from './deps.ts';

export interface MetricsSource {
  devices: DeviceDirectory;
  store: MeasurementStore;
  live: LiveSource;
  /** Bytes the database takes on disk (file and write-ahead log); absent when there is no file (tests). */
  databaseBytes?: () => number;
  now?: () => number;
}

const LINK_STATES: readonly LinkState[] = ['connected', 'reconnecting', 'disconnected', 'bootloader', 'absent'];
const NWH_PER_WH = 1e9;

/** Counters per device, from DeviceInfo['counters'] (this process's link and ingest since it started). */
const COUNTERS = [
  ['crabwatt_frames_total', 'Frames decoded from the device link since serve started.', (c) => c.frames],
  ['crabwatt_crc_errors_total', 'Frames rejected for a bad CRC-32C since serve started.', (c) => c.crcErrors],
  ['crabwatt_sequence_gaps_total', 'Frames missing by sequence number since serve started.', (c) => c.seqGaps],
  ['crabwatt_duplicate_windows_total', 'Windows received again and not stored twice since serve started.', (c) => c.duplicates],
  ['crabwatt_device_resets_total', 'Device reboots (new boot_id) seen on the link since serve started.', (c) => c.resets],
  ['crabwatt_windows_total', 'Windows stored since serve started.', (c) => c.windows],
] as const satisfies readonly (readonly [string, string, (c: DeviceInfo['counters']) => number])[];

/** Counters of the power-quality analysis (DeviceInfo['pq']), for the devices it runs on. */
const PQ_COUNTERS = [
  ['crabwatt_waveform_frames_total', 'Waveform frames received since serve started.', (c) => c.waveformFrames],
  ['crabwatt_waveform_lost_samples_total', 'Decimated stream samples lost between waveform frames since serve started.', (c) => c.waveformLostSamples],
  ['crabwatt_waveform_gaps_total', 'Discontinuities of the waveform stream (losses and restarts) since serve started.', (c) => c.waveformGaps],
  ['crabwatt_pq_windows_total', 'Windows analysed for harmonics since serve started.', (c) => c.pqWindows],
  ['crabwatt_pq_gap_windows_total', 'Whole-cycle windows the waveform stream did not cover since serve started.', (c) => c.pqGapWindows],
  ['crabwatt_pq_events_total', 'Voltage dips, swells and interruptions detected since serve started.', (c) => c.pqEvents],
] as const satisfies readonly (readonly [string, string, (c: PqCounters) => number])[];

/** Gauges from a device's last window, shown while it is connected (a stale reading is no reading). */
const READINGS = [
  ['crabwatt_voltage_volts', 'RMS voltage of the last window.', (w) => w.vrms],
  ['crabwatt_current_amperes', 'RMS current of the last window.', (w) => w.irms],
  ['crabwatt_power_watts', 'Real power of the last window.', (w) => w.p],
  ['crabwatt_apparent_power_voltamperes', 'Apparent power of the last window.', (w) => w.s],
  ['crabwatt_power_factor', 'Power factor of the last window (absent when undefined: no current).', (w) => w.pf],
  ['crabwatt_frequency_hertz', 'Mains frequency of the last window (absent on DC).', (w) => w.freq_hz],
] as const satisfies readonly (readonly [string, string, (w: LiveWindow) => number | null])[];

export class Metrics {
  private readonly registry = new Registry();
  private readonly latest = new Map<string, LiveWindow>();
  private readonly energy: Counter<'device'>;
  private readonly counters: { metric: Counter<'device'>; read: (c: DeviceInfo['counters']) => number }[];
  private readonly pqCounters: { metric: Counter<'device'>; read: (c: PqCounters) => number }[];
  private readonly readings: { metric: Gauge<'device'>; read: (w: LiveWindow) => number | null }[];
  private readonly linkState: Gauge<'device' | 'state'>;
  private readonly lag: Gauge<'device'>;
  private readonly dbBytes: Gauge;
  private readonly onWindow = (w: LiveWindow) => void this.latest.set(w.device, w);

  constructor(private readonly source: MetricsSource) {
    const registers = [this.registry];
    this.energy = new Counter({
      name: 'crabwatt_energy_wh_total',
      help: 'Energy booked for the device, from the exact nWh ledger in the database (kept across restarts).',
      labelNames: ['device'], registers,
    });
    this.counters = COUNTERS.map(([name, help, read]) => ({ metric: new Counter({ name, help, labelNames: ['device'], registers }), read }));
    this.pqCounters = PQ_COUNTERS.map(([name, help, read]) => ({ metric: new Counter({ name, help, labelNames: ['device'], registers }), read }));
    this.readings = READINGS.map(([name, help, read]) => ({ metric: new Gauge({ name, help, labelNames: ['device'], registers }), read }));
    this.linkState = new Gauge({
      name: 'crabwatt_link_state',
      help: `1 for the device link's current state, 0 for the others (${LINK_STATES.join(', ')}).`,
      labelNames: ['device', 'state'], registers,
    });
    this.lag = new Gauge({
      name: 'crabwatt_ingest_lag_seconds',
      help: "Seconds since the device's last window arrived (grows while its link or ingest is held up).",
      labelNames: ['device'], registers,
    });
    this.dbBytes = new Gauge({ name: 'crabwatt_database_bytes', help: 'Size of the database on disk, write-ahead log included.', registers });
    source.live.on('window', this.onWindow);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition of this moment. */
  async render(): Promise<string> {
    this.registry.resetMetrics();
    const now = (this.source.now ?? Date.now)();
    for (const d of this.source.devices.list()) {
      if (d.id === '') continue; // a port that has not identified has no series to belong to
      const device = { device: d.id };
      this.energy.inc(device, Number(this.source.store.energy(d.id, now).totalNwh) / NWH_PER_WH);
      for (const c of this.counters) c.metric.inc(device, c.read(d.counters));
      if (d.pq) for (const c of this.pqCounters) c.metric.inc(device, c.read(d.pq));
      for (const state of LINK_STATES) this.linkState.set({ device: d.id, state }, state === d.state ? 1 : 0);
      const w = this.latest.get(d.id);
      if (!w) continue;
      this.lag.set(device, Math.max(0, now - w.receivedAtMs) / 1000);
      if (d.state !== 'connected') continue;
      for (const r of this.readings) {
        const v = r.read(w);
        if (v !== null) r.metric.set(device, v);
      }
    }
    const bytes = this.source.databaseBytes?.();
    if (bytes !== undefined) this.dbBytes.set(bytes);
    return this.registry.metrics();
  }

  close(): void {
    this.source.live.off('window', this.onWindow);
  }
}
