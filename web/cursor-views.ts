// The cursors of the history and the waveform views and their readouts: Δt, mean, min, max and RMS of the
// quantity on the chart, and the energy between the cursors: for history exact from the ledger (the server's
// energy route over the whole seconds between them), for a capture Σ v·i·dt of its samples.

import { api, query, type WaveformJson, type EnergyPeriodsJson, type EnergyPeriodsQueryParams, type HistoryJson } from './api.ts';
import { captureTimesMs } from './capture.ts';
import { bucketStats, captureEnergyWh, sampleStats, type Stats } from './cursor-stats.ts';
import { Cursors } from './cursors.ts';
import { kwh } from './energy.ts';
import { si } from './format.ts';
import type uPlot from 'uplot';

/** A span as a person says it: "850 ms", "12.5 s", "4 min 10 s", "2 h 05 min". */
export function duration(ms: number): string {
  const a = Math.abs(ms);
  if (a < 1000) return `${Number(a.toPrecision(3))} ms`;
  if (a < 60_000) return `${Number((a / 1000).toPrecision(3))} s`;
  const s = Math.round(a / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  const m = Math.round(s / 60);
  if (m < 1440) return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
  return `${Math.floor(m / 1440)} d ${Math.floor((m % 1440) / 60)} h`;
}

function row(label: string, s: Stats, unit: string): HTMLTableRowElement {
  const tr = document.createElement('tr');
  const cells = [label, ...[s.mean, s.min, s.max, s.rms].map((v) => { const f = si(v, unit); return `${f.text} ${f.unit}`.trim(); })];
  tr.append(...cells.map((text, k) => Object.assign(document.createElement(k === 0 ? 'th' : 'td'), { textContent: text })));
  return tr;
}

function table(rows: HTMLTableRowElement[]): HTMLTableElement {
  const t = document.createElement('table');
  t.className = 'cursor-table';
  const head = document.createElement('tr');
  head.append(...['', 'mean', 'min', 'max', 'RMS'].map((h) => Object.assign(document.createElement('th'), { textContent: h })));
  t.append(head, ...rows);
  return t;
}

function line(text: string, key: string): HTMLParagraphElement {
  return Object.assign(document.createElement('p'), { className: `cursor-line ${key}`, textContent: text });
}

export function setupCursorViews(opts: {
  historyPlot: () => uPlot;
  wavePlot: () => uPlot;
  device: () => string | null;
  field: () => { key: string; label: string; unit: string };
  zone: string;
}) {
  const histOut = document.querySelector<HTMLElement>('#hist-cursor-readout')!;
  const waveOut = document.querySelector<HTMLElement>('#wave-cursor-readout')!;
  let history: HistoryJson | undefined;
  let capture: WaveformJson | undefined;
  let energySeq = 0;
  const histEnergy = line('Energy …', 'energy');
  let energyTimer: ReturnType<typeof setTimeout> | undefined;

  const historyEnergy = (fromMs: number, toMs: number, target: HTMLElement) => {
    const device = opts.device();
    clearTimeout(energyTimer);
    if (!device) return;
    const seq = ++energySeq;
    // While a cursor is dragged only the last position is asked for.
    energyTimer = setTimeout(async () => {
      const q = query({ from: fromMs, to: toMs, bucket: 'all', tz: opts.zone } satisfies EnergyPeriodsQueryParams);
      try {
        const e = await api<EnergyPeriodsJson>(`/api/devices/${encodeURIComponent(device)}/energy/periods?${q}`);
        if (seq !== energySeq) return;
        const t = e.total;
        target.dataset.nwh = t.energy_nwh;
        target.dataset.from = String(t.start_ms);
        target.dataset.to = String(t.end_ms);
        target.textContent = `Energy ${kwh(BigInt(t.energy_nwh))} kWh (${t.energy_nwh} nWh, exact from the ledger, ${new Date(t.start_ms).toLocaleTimeString()} – ${new Date(t.end_ms).toLocaleTimeString()})`;
      } catch (err) {
        if (seq === energySeq) target.textContent = `energy unavailable: ${(err as Error).message}`;
      }
    }, 200);
  };

  const histCursors = new Cursors(opts.historyPlot, (a, b) => {
    if (!history) return;
    const f = opts.field();
    const s = history.series[f.key];
    const stats = s ? bucketStats(history.t.map((x) => x / 1000), s.mean, s.min, s.max, a, b) : sampleStats([], [], a, b);
    histOut.dataset.dtMs = String(Math.round((b - a) * 1000));
    // The energy line stays (with the last exact answer) until the new one arrives, so it never reads blank.
    histOut.replaceChildren(line(`Δt ${duration((b - a) * 1000)} · ${stats.n} buckets of ${duration(history.bucket_ms)}`, 'dt'), table([row(f.label, stats, f.unit)]), histEnergy);
    historyEnergy(Math.round(a * 1000), Math.round(b * 1000), histEnergy);
  });

  const waveCursors = new Cursors(opts.wavePlot, (a, b) => {
    if (!capture) return;
    const c = capture;
    const t = captureTimesMs(c);
    const v = c.v.map((x) => x * c.kv);
    const i = c.i.map((x) => x * c.ki);
    const p = v.map((x, k) => x * i[k]!);
    const dtMs = (c.decimation / c.sample_rate_hz) * 1000;
    const wh = captureEnergyWh(t, v, i, a, b, dtMs);
    const e = si(wh, 'Wh');
    waveOut.dataset.dtMs = String(b - a);
    waveOut.dataset.wh = String(wh);
    waveOut.replaceChildren(
      line(`Δt ${duration(b - a)} · ${sampleStats(t, v, a, b).n} pairs`, 'dt'),
      table([row('V', sampleStats(t, v, a, b), 'V'), row('I', sampleStats(t, i, a, b), 'A'), row('P', sampleStats(t, p, a, b), 'W')]),
      line(`Energy ${e.text} ${e.unit} (Σ v·i·dt of the samples)`, 'energy'),
    );
  });

  const toggle = (button: HTMLButtonElement, cursors: Cursors, out: HTMLElement) =>
    button.addEventListener('click', () => {
      cursors.toggle();
      button.setAttribute('aria-pressed', String(cursors.enabled));
      out.hidden = !cursors.enabled;
    });
  toggle(document.querySelector('#hist-cursors')!, histCursors, histOut);
  toggle(document.querySelector('#wave-cursors')!, waveCursors, waveOut);

  return {
    /** After the history chart showed an answer: keep the cursors on their times, re-measure. */
    history(h: HistoryJson): void {
      history = h;
      histCursors.refresh();
    },
    capture(c: WaveformJson): void {
      capture = c;
      waveCursors.refresh();
    },
  };
}
