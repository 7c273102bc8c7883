// The dashboard: live tiles and chart from the WebSocket, the device panel and status banner, history
// with zoom and pan; the waveform (waveform.ts), energy, event and export views are set up from their modules.

import {
  api, initToken, query, withToken,
  type DeviceJson, type EnergyJson, type EnergyQueryParams, type HistoryJson,
  type HistoryQueryParams, type LiveMsg, type WindowMsg,
} from './api.ts';
import type uPlot from 'uplot';
import { HISTORY_FIELDS, HistoryChart, LiveChart, WaveformChart, type HistoryField } from './charts.ts';
import { setupCursorViews } from './cursor-views.ts';
import { DevicePicker } from './device-picker.ts';
import { setupEnergyView } from './energy.ts';
import { setupEventLog } from './events.ts';
import { openExportDialog, setupExportDialog } from './export.ts';
import { duration, fixed, integer, kwhRegister, si } from './format.ts';
import { setupPqView } from './pq.ts';
import { setupTariffDialog } from './tariff.ts';
import { setupWaveform } from './waveform.ts';
import { setupCalibration } from './calibrate.ts';

const LIVE_SPAN_MS = 5 * 60 * 1000;
const ENERGY_POLL_MS = 2000;
/** Tiles grey out when no window came for this long (e.g. 1 cycle windows stop arriving). */
const STALE_MS = 3000;
const LATENCY_SAMPLES = 2000;

const $ = <T extends HTMLElement = HTMLElement>(sel: string): T => {
  const el = document.querySelector<T>(sel);
  if (!el) throw new Error(`dashboard markup lacks ${sel}`);
  return el;
};

const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';

interface State {
  devices: DeviceJson[];
  device: string | null;
  wsUp: boolean;
  /** The server wants a token this page does not have (or has wrong). */
  authNeeded: boolean;
  lastWindowAt: number;
  /** Mains frequency of the current device's last window that measured one (captures span cycles). */
  freqHz: number | null;
  latencies: number[];
  histFrom: number;
  histTo: number;
  histField: HistoryField;
  histSeq: number;
}

const state: State = {
  devices: [],
  device: null,
  wsUp: false,
  authNeeded: false,
  lastWindowAt: 0,
  freqHz: null,
  latencies: [],
  histFrom: Date.now() - 3600_000,
  histTo: Date.now(),
  histField: HISTORY_FIELDS.p!,
  histSeq: 0,
};

/** Read by the browser tests and handy in the console. */
declare global {
  interface Window {
    crabwatt: { latenciesMs: number[]; historyQueries: string[]; charts: { live: uPlot; history: uPlot } };
  }
}

initToken();
const liveChart = new LiveChart($('#live-chart'), LIVE_SPAN_MS);
const historyChart = new HistoryChart($('#history-chart'), state.histField, (from, to) => {
  state.histFrom = from;
  state.histTo = to;
  markSpan(null);
  void loadHistory();
});
const waveChart = new WaveformChart($('#wave-chart'));
window.crabwatt = {
  latenciesMs: state.latencies,
  historyQueries: [],
  charts: { live: liveChart.plot, get history() { return historyChart.plot; } },
};
const cursorViews = setupCursorViews({
  historyPlot: () => historyChart.plot,
  wavePlot: () => waveChart.plot,
  device: () => state.device,
  field: () => state.histField,
  zone,
});

// --- tiles ---------------------------------------------------------------------------------------

function setTile(q: string, text: string, unit?: string): void {
  const tile = document.querySelector<HTMLElement>(`.tile[data-q="${q}"]`);
  if (!tile) return;
  tile.querySelector('.value')!.textContent = text;
  if (unit !== undefined) tile.querySelector('.unit')!.textContent = unit;
}

function setSi(q: string, value: number | null, unit: string): void {
  const f = si(value, unit);
  setTile(q, f.text, f.unit);
}

function onWindow(w: WindowMsg): void {
  if (w.device !== state.device) return;
  state.lastWindowAt = Date.now();
  const lat = Date.now() - w.received_at_ms;
  if (state.latencies.length >= LATENCY_SAMPLES) state.latencies.shift();
  state.latencies.push(lat);
  setTile('vrms', fixed(w.vrms, 1), 'V');
  setSi('irms', w.irms, 'A');
  setSi('p', w.p, 'W');
  setSi('s', w.s, 'VA');
  setTile('pf', fixed(w.pf, 3));
  setTile('freq_hz', fixed(w.freq_hz, 3), 'Hz');
  if (w.freq_hz !== null && w.freq_hz > 0) state.freqHz = w.freq_hz;
  for (const t of document.querySelectorAll('.tile')) t.classList.remove('stale');
  liveChart.push(w.t_ms, w.p, w.s);
  calibration.window(w);
}

setInterval(() => {
  if (state.lastWindowAt && Date.now() - state.lastWindowAt > STALE_MS) {
    for (const t of document.querySelectorAll('.tile:not([data-q$="_wh"])')) t.classList.add('stale');
  }
}, 1000);

async function pollEnergy(): Promise<void> {
  if (!state.device) return;
  void picker.pollTotal(zone).catch(() => undefined); // the banner says why the server is unreachable
  try {
    const e = await api<EnergyJson>(`/api/devices/${encodeURIComponent(state.device)}/energy?${query({ tz: zone } satisfies EnergyQueryParams)}`);
    setTile('today_wh', kwhRegister(e.today_wh), 'kWh');
    setTile('total_wh', kwhRegister(e.total_wh), 'kWh');
  } catch {
    // the banner already says why the server is unreachable
  }
}
setInterval(() => void pollEnergy(), ENERGY_POLL_MS);

// --- devices, banner, panel -------------------------------------------------------------------------

const KIND_TEXT = { hardware: 'connected board', simulated: 'simulated device', rtl: 'RTL twin (Verilator)' } as const;
const HEALTH_TEXT: Record<DeviceJson['health']['state'], string> = {
  ok: 'stored',
  no_valid_frames: 'no valid frames',
  disk_full: 'NOT stored: disk full',
  write_failing: 'NOT stored: database error',
};
const HEALTH_TITLE: Record<Exclude<DeviceJson['health']['state'], 'ok'>, string> = {
  no_valid_frames: 'No valid data from the device.',
  disk_full: 'The disk is full: measurements are not being stored.',
  write_failing: 'Measurements are not being stored.',
};

function current(): DeviceJson | undefined {
  return state.devices.find((d) => d.id === state.device);
}

function onDevices(devices: DeviceJson[]): void {
  state.devices = devices;
  picker.update(devices);
  // The device remembered from the last visit is current without a selection: its charts start here.
  if (state.device && current() && shownDevice !== state.device) showDevice();
  renderPanel();
  renderBanner();
}

/** The device the charts and tiles were last started for. */
let shownDevice: string | null = null;

function selectDevice(id: string): void {
  state.device = id;
  state.freqHz = null;
  showDevice();
}

function showDevice(): void {
  shownDevice = state.device;
  liveChart.clear();
  void fillLive();
  void pollEnergy();
  void loadHistory();
  void energyView.load();
  void eventLog.load();
  void calibration.load();
  void pqView.load();
}

const picker = new DevicePicker($<HTMLSelectElement>('#device-select'), $('.tile[data-q="all_total_wh"]'), selectDevice);
state.device = picker.device;

function renderPanel(): void {
  const d = current();
  const set = (k: string, text: string, cls = '') => {
    const dd = document.querySelector<HTMLElement>(`#device-panel dd[data-k="${k}"]`)!;
    dd.textContent = text;
    dd.className = cls;
  };
  if (!d) {
    for (const k of ['kind', 'state', 'health', 'path', 'fps', 'frames', 'crc', 'gaps', 'dropped', 'resets', 'reconnects', 'windows', 'duplicates']) set(k, '—');
    return;
  }
  const c = d.counters;
  set('kind', KIND_TEXT[d.kind]);
  set('state', d.state, d.state === 'connected' ? 'ok' : 'bad');
  set('health', HEALTH_TEXT[d.health.state], d.health.state === 'ok' ? 'ok' : 'bad');
  set('path', d.path ?? '—');
  set('fps', c.frames_per_s.toFixed(1));
  set('frames', integer(c.frames));
  set('dropped', integer(c.dropped), c.dropped > 0 ? 'bad' : '');
  set('crc', integer(c.crc_errors), c.crc_errors > 0 ? 'bad' : '');
  set('gaps', integer(c.seq_gaps), c.seq_gaps > 0 ? 'bad' : '');
  set('resets', integer(c.resets));
  set('reconnects', integer(c.reconnects));
  set('windows', integer(c.windows));
  // Duplicates are harmless one by one (a repeated frame); red when they dominate and nothing new is stored.
  set('duplicates', integer(c.duplicates), d.warning ? 'bad' : '');
  const sorted = [...state.latencies].sort((a, b) => a - b);
  const p99 = sorted.length >= 20 ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]! : null;
  set('latency', p99 === null ? '—' : `${p99} ms`);
}

function renderBanner(): void {
  const banner = $('#banner');
  const show = (kind: 'warn' | 'bad', title: string, detail: string, state: string) => {
    banner.hidden = false;
    banner.dataset.kind = kind;
    banner.dataset.state = state;
    banner.replaceChildren();
    const strong = document.createElement('strong');
    strong.textContent = title;
    banner.append(strong, document.createTextNode(detail));
  };
  const d = current();
  if (state.authNeeded) {
    show('bad', 'This server needs a token.', ' Open the dashboard as http://HOST:PORT/?token=YOUR_TOKEN (the token `crabwatt serve` was given: --token-file or CRABWATT_TOKEN).', 'token');
  } else if (!state.wsUp) {
    show('bad', 'Disconnected from the server, reconnecting…', ' Live values resume by themselves when it is back.', 'server-down');
  } else if (state.devices.length === 0) {
    show('warn', 'No device.', ' Plug in a crabwatt board (USB 1209:5af1), or start the server with --device sim.', 'no-device');
  } else if (d && d.health.state !== 'ok') {
    show('bad', HEALTH_TITLE[d.health.state], ` ${d.health.detail}`, d.health.state);
  } else if (d?.state === 'bootloader') {
    show('warn', 'Board in bootloader mode.', ` ${d.detail || 'Flash it with `crabwatt flash FILE.dfu`, or start the installed bitstream with `dfu-util -a 0 -e` (r0.1 stays in DFU until then).'}`, 'bootloader');
  } else if (d && (d.state === 'disconnected' || d.state === 'reconnecting')) {
    show('bad', 'Device disconnected, reconnecting…', ` ${d.detail}`, 'reconnecting');
  } else if (d?.state === 'absent') {
    show('warn', 'No device.', ` ${d.detail}`, 'no-device');
  } else if (d?.warning) {
    show('warn', 'Connected, but nothing new is stored.', ` ${d.warning}`, 'device-warning');
  } else {
    banner.hidden = true;
    banner.dataset.state = 'ok';
  }
  const pill = $('#conn');
  pill.dataset.state = state.wsUp ? 'live' : 'reconnecting';
  pill.textContent = state.wsUp ? 'live' : 'reconnecting…';
}

// --- WebSocket ------------------------------------------------------------------------------------

let retryMs = 500;
function connect(): void {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(`${proto}//${location.host}${withToken('/api/live')}`);
  ws.onopen = () => {
    retryMs = 500;
    state.wsUp = true;
    state.authNeeded = false;
    renderBanner();
  };
  ws.onmessage = (ev) => {
    const msg = JSON.parse(String(ev.data)) as LiveMsg;
    if (msg.type === 'window') onWindow(msg);
    else if (msg.type === 'devices') onDevices(msg.devices);
    else if (msg.type === 'link') {
      const d = state.devices.find((x) => x.id === msg.device);
      if (d) {
        d.state = msg.state;
        d.detail = msg.detail;
      }
      renderPanel();
      renderBanner();
    }
  };
  ws.onclose = () => {
    state.wsUp = false;
    // A refused upgrade looks like any close: ask over HTTP whether it was the token.
    fetch(withToken('/api/devices'))
      .then((r) => {
        state.authNeeded = r.status === 401;
        renderBanner();
      })
      .catch(() => undefined);
    renderBanner();
    setTimeout(connect, retryMs);
    retryMs = Math.min(5000, retryMs * 2);
  };
}
connect();

// --- history --------------------------------------------------------------------------------------

async function loadHistory(): Promise<void> {
  if (!state.device) return;
  const seq = ++state.histSeq;
  const el = $('#history-chart');
  const points = Math.max(100, Math.min(4000, Math.round(el.clientWidth || 1000)));
  const q = query({
    device: state.device, from: state.histFrom, to: state.histTo, points, fields: state.histField.key,
  } satisfies HistoryQueryParams);
  window.crabwatt.historyQueries.push(q);
  try {
    const h = await api<HistoryJson>(`/api/history?${q}`);
    if (seq !== state.histSeq) return; // a newer query is on its way
    historyChart.show(h);
    cursorViews.history(h);
    $('#hist-info').textContent =
      `${h.t.length} buckets of ${duration(h.bucket_ms)} from the ${h.level} level · drag to zoom · shaded spans have no data`;
  } catch (err) {
    $('#hist-info').textContent = `history unavailable: ${(err as Error).message}`;
  }
}

/** The live chart's span before the page opened, from the history at the live chart's 100 ms resolution. */
async function fillLive(): Promise<void> {
  const device = state.device;
  if (!device) return;
  const to = Date.now();
  const q = query({ device, from: to - LIVE_SPAN_MS, to, points: LIVE_SPAN_MS / 100, fields: 'p,s' } satisfies HistoryQueryParams);
  try {
    const h = await api<HistoryJson>(`/api/history?${q}`);
    if (device !== state.device) return;
    const p = h.series['p']?.mean ?? [];
    const s = h.series['s']?.mean ?? [];
    liveChart.fill(h.t.map((t) => t + h.bucket_ms / 2), p, s);
  } catch {
    // the live windows still fill the chart; the banner says why the server is unreachable
  }
}

function markSpan(span: number | null): void {
  for (const b of document.querySelectorAll<HTMLButtonElement>('button[data-span]')) {
    b.setAttribute('aria-pressed', String(Number(b.dataset.span) === span));
  }
}

for (const b of document.querySelectorAll<HTMLButtonElement>('button[data-span]')) {
  b.addEventListener('click', () => {
    const span = Number(b.dataset.span);
    state.histTo = Date.now();
    state.histFrom = state.histTo - span;
    markSpan(span);
    void loadHistory();
  });
}
markSpan(3600_000);

function shift(fraction: number): void {
  const width = state.histTo - state.histFrom;
  const delta = Math.round(width * fraction);
  state.histFrom += delta;
  state.histTo += delta;
  markSpan(null);
  void loadHistory();
}
$('#pan-left').addEventListener('click', () => shift(-0.5));
$('#pan-right').addEventListener('click', () => shift(0.5));
$('#zoom-out').addEventListener('click', () => {
  const mid = (state.histFrom + state.histTo) / 2;
  const width = (state.histTo - state.histFrom) * 2;
  state.histFrom = Math.round(mid - width / 2);
  state.histTo = Math.round(mid + width / 2);
  markSpan(null);
  void loadHistory();
});
$<HTMLSelectElement>('#hist-field').addEventListener('change', (e) => {
  state.histField = HISTORY_FIELDS[(e.target as HTMLSelectElement).value] ?? HISTORY_FIELDS.p!;
  historyChart.setField(state.histField);
  void loadHistory();
});

// While the range ends at "now", keep it sliding so the chart fills in.
setInterval(() => {
  const pressed = document.querySelector<HTMLButtonElement>('button[data-span][aria-pressed="true"]');
  if (!pressed) return;
  state.histTo = Date.now();
  state.histFrom = state.histTo - Number(pressed.dataset.span);
  void loadHistory();
}, 15_000);

// --- waveform capture, kept captures -------------------------------------------------------------

setupWaveform({
  device: () => state.device,
  freqHz: () => state.freqHz,
  sampleRateHz: () => current()?.sample_rate_hz ?? 0,
  chart: waveChart,
  cursors: cursorViews,
});

// --- export ---------------------------------------------------------------------------------------

setupExportDialog(() => state.device, zone);
$('#export-open').addEventListener('click', () => openExportDialog(state.histFrom, state.histTo));

// --- energy by period, tariff ---------------------------------------------------------------------

const energyView = setupEnergyView(() => state.device, zone);
setupTariffDialog(() => void energyView.load());

// --- event log ------------------------------------------------------------------------------------

const eventLog = setupEventLog(() => state.device, (from, to) => {
  state.histFrom = from;
  state.histTo = to;
  markSpan(null);
  void loadHistory();
  $('#history-chart').scrollIntoView({ block: 'center' });
});

// --- calibration ----------------------------------------------------------------------------------

const calibration = setupCalibration({ device: () => state.device, sampleRateHz: () => current()?.sample_rate_hz ?? 0, freqHz: () => state.freqHz });
const pqView = setupPqView(() => current() ?? null);

setInterval(renderPanel, 1000);
renderBanner();
void pollEnergy();
