// Kept captures: keep the capture on screen in the database under a name, list the kept ones (device, time,
// pairs, rate, span, name), reopen one into the waveform view (its cursors follow), rename, delete, download as
// CSV (the server writes it: GET /api/captures/:id/csv) or the chart as PNG (drawn here from the chart's canvas).

import {
  api, query, request,
  type KeepCaptureBodyJson, type KeptCaptureInfoJson, type KeptCaptureJson, type KeptCapturesJson, type KeptCapturesQueryParams,
  type RenameCaptureBodyJson, type WaveformJson,
} from './api.ts';
import { describeCapture, formatRate } from './capture.ts';
import type { WaveformChart } from './charts.ts';
import { nativeDownload } from './export.ts';
import { isoDate, isoTime } from './format.ts';

/** Local date and 24-hour time, as the CSV and the other views write them. */
const when = (ms: number) => `${isoDate(ms)} ${isoTime(ms, true)}`;

/** What the waveform view shows: a capture just taken (keepable) or a kept one. */
type Shown = { kind: 'taken'; device: string; captureId: number } | { kind: 'kept'; info: KeptCaptureInfoJson } | null;

const json = (body: KeepCaptureBodyJson | RenameCaptureBodyJson): RequestInit => ({
  headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
});

export function setupKeptCaptures(opts: { chart: WaveformChart; show: (c: WaveformJson, text: string) => void }): {
  taken: (device: string, captureId: number) => void;
} {
  const $ = <T extends HTMLElement>(sel: string) => document.querySelector<T>(sel)!;
  const keep = $<HTMLButtonElement>('#capture-keep');
  const name = $<HTMLInputElement>('#capture-name');
  const png = $<HTMLButtonElement>('#capture-png');
  const body = $<HTMLElement>('#kept-list');
  const status = $<HTMLElement>('#kept-status');
  let shown: Shown = null;

  const setShown = (s: Shown) => {
    shown = s;
    keep.disabled = s?.kind !== 'taken';
    name.disabled = keep.disabled;
    png.disabled = s === null;
  };
  setShown(null);

  const load = async () => {
    try {
      const r = await api<KeptCapturesJson>(`/api/captures?${query({ limit: 200 } satisfies Partial<KeptCapturesQueryParams>)}`);
      body.replaceChildren(...r.captures.map(row));
      body.dataset.count = String(r.captures.length);
      if (!status.dataset.sticky) status.textContent = r.captures.length === 0 ? 'None kept yet: take a capture and press Keep.' : '';
    } catch (err) {
      status.textContent = `kept captures unavailable: ${(err as Error).message}`;
    }
  };
  const say = (text: string) => {
    status.textContent = text;
    status.dataset.sticky = '1';
  };

  const open = async (id: number) => {
    try {
      const c = await api<KeptCaptureJson>(`/api/captures/${id}`);
      opts.show(c, `kept “${c.name}”: ${describeCapture(c, when(c.captured_at))}`);
      setShown({ kind: 'kept', info: c });
      $<HTMLElement>('#wave-chart').scrollIntoView({ block: 'center' });
    } catch (err) {
      say(`could not open it: ${(err as Error).message}`);
    }
  };

  const rename = (tr: HTMLTableRowElement, c: KeptCaptureInfoJson) => {
    const cell = tr.querySelector<HTMLElement>('.kept-name')!;
    const input = Object.assign(document.createElement('input'), { type: 'text', value: c.name, maxLength: 80, className: 'kept-rename' });
    input.setAttribute('aria-label', 'new name');
    cell.replaceChildren(input);
    input.focus();
    input.select();
    let finished = false;
    // Enter, Escape or leaving the field ends it, once (the row's redraw takes the field away).
    const done = async (save: boolean) => {
      if (finished) return;
      finished = true;
      if (!save || input.value === c.name) return void load();
      try {
        await request(`/api/captures/${c.id}`, { method: 'PATCH', ...json({ name: input.value }) });
        delete status.dataset.sticky;
      } catch (err) {
        say(`not renamed: ${(err as Error).message}`);
      }
      void load();
    };
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') void done(true);
      if (e.key === 'Escape') void done(false);
    });
    input.addEventListener('blur', () => void done(true), { once: true });
  };

  const remove = async (button: HTMLButtonElement, c: KeptCaptureInfoJson) => {
    // Two steps (a tap, then a tap on "Delete?") rather than a modal, which phones make awkward.
    if (button.dataset.armed !== '1') {
      button.dataset.armed = '1';
      button.textContent = 'Delete?';
      return;
    }
    try {
      await request(`/api/captures/${c.id}`, { method: 'DELETE' });
      if (shown?.kind === 'kept' && shown.info.id === c.id) setShown(null);
      say(`deleted “${c.name}”`);
    } catch (err) {
      say(`not deleted: ${(err as Error).message}`);
    }
    void load();
  };

  function row(c: KeptCaptureInfoJson): HTMLTableRowElement {
    const tr = document.createElement('tr');
    tr.dataset.id = String(c.id);
    const td = (text: string, cls = '') => Object.assign(document.createElement('td'), { textContent: text, className: cls });
    const button = (text: string, action: string, on: (b: HTMLButtonElement) => void) => {
      const b = Object.assign(document.createElement('button'), { type: 'button', textContent: text });
      b.dataset.action = action;
      b.setAttribute('aria-label', `${text} “${c.name}”`);
      b.addEventListener('click', () => on(b));
      return b;
    };
    const actions = document.createElement('td');
    actions.className = 'kept-actions';
    actions.append(
      button('Open', 'open', () => void open(c.id)),
      button('Rename', 'rename', () => rename(tr, c)),
      button('CSV', 'csv', () => nativeDownload(`/api/captures/${c.id}/csv`)),
      button('Delete', 'delete', (b) => void remove(b, c)),
    );
    const whenCell = td('', 'kept-when');
    whenCell.append(Object.assign(document.createElement('time'), { textContent: when(c.captured_at), dateTime: new Date(c.captured_at).toISOString() }));
    tr.append(
      td(c.name, 'kept-name'), whenCell, td(c.device, 'kept-device'), td(`${c.pairs}`, 'kept-pairs'),
      td(formatRate(c.rate_hz), 'kept-rate'), td(`${+c.span_ms.toPrecision(3)} ms`, 'kept-span'), actions,
    );
    return tr;
  }

  keep.addEventListener('click', async () => {
    if (shown?.kind !== 'taken') return;
    const given = name.value.trim();
    try {
      const r = await request('/api/captures', {
        method: 'POST', ...json({ device: shown.device, capture_id: shown.captureId, ...(given && { name: name.value }) }),
      });
      const info = (await r.json()) as KeptCaptureInfoJson;
      setShown({ kind: 'kept', info });
      name.value = '';
      say(`kept as “${info.name}”`);
    } catch (err) {
      say(`not kept: ${(err as Error).message}`);
    }
    void load();
  });
  name.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') keep.click();
  });

  png.addEventListener('click', () => {
    if (!shown) return;
    const title = shown.kind === 'kept'
      ? `${shown.info.name} · ${shown.info.device} · ${when(shown.info.captured_at)}`
      : `capture ${shown.captureId} · ${shown.device}`;
    const stem = shown.kind === 'kept' ? shown.info.file_stem : `crabwatt-capture-${shown.device}-${shown.captureId}`;
    chartPng(opts.chart, title).toBlob((blob) => {
      if (!blob) return say('the browser could not draw the PNG');
      const a = Object.assign(document.createElement('a'), { href: URL.createObjectURL(blob), download: `${stem}.png` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
    }, 'image/png');
  });

  void load();
  return { taken: (device, captureId) => setShown({ kind: 'taken', device, captureId }) };
}

/** The chart's canvas on the page's background, with a title line and the series' names and units above it. */
function chartPng(chart: WaveformChart, title: string): HTMLCanvasElement {
  const plot = chart.plot.ctx.canvas;
  const scale = plot.width / Math.max(1, chart.plot.width);
  const head = Math.round(44 * scale);
  const out = Object.assign(document.createElement('canvas'), { width: plot.width, height: plot.height + head });
  const ctx = out.getContext('2d')!;
  const css = getComputedStyle(document.documentElement);
  ctx.fillStyle = css.getPropertyValue('--card').trim() || '#151c25';
  ctx.fillRect(0, 0, out.width, out.height);
  ctx.font = `${Math.round(14 * scale)}px system-ui, sans-serif`;
  ctx.textBaseline = 'top';
  ctx.fillStyle = css.getPropertyValue('--text').trim() || '#e6edf5';
  ctx.fillText(title, 8 * scale, 6 * scale);
  let x = 8 * scale;
  chart.plot.series.forEach((s, k) => {
    if (k === 0) return;
    const text = `${String(s.label)} (${s.scale === 'v' ? 'V' : 'A'})`;
    // uPlot keeps a series' stroke as a function of the plot once it is drawn.
    ctx.fillStyle = (typeof s.stroke === 'function' ? s.stroke(chart.plot, k) : s.stroke) as string;
    ctx.fillText(text, x, 24 * scale);
    x += ctx.measureText(text).width + 16 * scale;
  });
  ctx.fillStyle = css.getPropertyValue('--muted').trim() || '#9aa7b8';
  ctx.fillText('ms from the trigger', x, 24 * scale);
  ctx.drawImage(plot, 0, head);
  return out;
}
