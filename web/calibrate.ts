// The calibration view: the registers in force and from which windows on (config_seq, since the last change),
// the procedure against a reference meter (an optional zero-load step for the offsets, then a known load with
// the meter's V, I and P; the arithmetic is calibration-math.ts), the result with its uncertainty and a live
// preview, Apply (PUT) and Undo (the values before the last change, from the stored history: the event log's
// calibration entries, before → after).

import { api, query, type CalibrationBodyJson, type CalibrationJson, type EventsJson, type EventsQueryParams, type WindowMsg } from './api.ts';
import {
  CalibrationError, computeCalibration, correctWindow, type CalibrationResult, type CalRegisters, type CalWindow,
} from './calibration-math.ts';
import { isoDate, isoTime } from './format.ts';

const REGISTERS = ['v_gain', 'i_gain', 'v_offset', 'i_offset', 'phase'] as const;
const HISTORY_SPAN_MS = 365 * 86_400_000;
const when = (ms: number) => `${isoDate(ms)} ${isoTime(ms, true)}`;

interface Change {
  tMs: number;
  from: CalRegisters;
  to: CalRegisters;
}

/** One measuring step: windows of the device measured with the calibration in force, until they span `spanMs`. */
interface Step {
  kind: 'zero' | 'load';
  configSeq: number;
  spanMs: number;
  windows: (CalWindow & { t_ms: number })[];
  skipped: number;
}

/** What a register means, in words a user checks against the meter. */
export function describeRegister(key: (typeof REGISTERS)[number], r: CalRegisters, sampleRateHz: number, freqHz: number): string {
  switch (key) {
    case 'v_gain':
    case 'i_gain':
      return `×${(r[key] / 16384).toFixed(5)}`;
    case 'v_offset':
      return `${+((r.v_offset * r.kv * (r.v_gain / 16384)) / 4).toPrecision(3)} V`;
    case 'i_offset':
      return `${+((r.i_offset * r.ki * (r.i_gain / 16384)) / 4).toPrecision(3)} A`;
    case 'phase': {
      const samples = r.phase / 65536;
      return `${+samples.toFixed(2)} samples, ${((samples / sampleRateHz) * freqHz * 360).toFixed(3)}° at ${freqHz.toFixed(2)} Hz`;
    }
  }
}

export function setupCalibration(opts: { device: () => string | null; sampleRateHz: () => number; freqHz: () => number | null }) {
  const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
  const status = $('cal-status');
  const apply = $<HTMLButtonElement>('cal-apply');
  const undo = $<HTMLButtonElement>('cal-undo');
  let inForce: CalibrationJson | null = null;
  let history: Change[] = [];
  let zero: Step | null = null;
  let load: Step | null = null;
  let measuring: Step | null = null;
  let result: CalibrationResult | null = null;
  let latestSeq: number | null = null;

  const freq = () => opts.freqHz() ?? 50;
  const base = () => `/api/devices/${encodeURIComponent(opts.device()!)}/calibration`;
  const say = (text: string) => (status.textContent = text);

  const row = (cells: string[], head = false) => {
    const tr = document.createElement('tr');
    tr.append(...cells.map((text, k) => Object.assign(document.createElement(head || k === 0 ? 'th' : 'td'), { textContent: text })));
    return tr;
  };

  function renderCurrent(): void {
    const table = $('cal-current');
    if (!inForce) return void table.replaceChildren();
    const r = inForce.calibration;
    table.replaceChildren(
      ...REGISTERS.map((k) => row([k, String(r[k]), describeRegister(k, r, opts.sampleRateHz(), freq())])),
      row(['kv', `${r.kv}`, 'V per ADC LSB']),
      row(['ki', `${r.ki}`, 'A per ADC LSB']),
    );
    const since = history[0] ? `since ${when(history[0].tMs)}` : 'since the device was first seen (no change recorded)';
    const seq = inForce.config_seq === null
      ? 'not confirmed by the device yet (not attached, or a push pending): windows may not carry it'
      : `windows from config_seq ${inForce.config_seq} of the device's current boot on carry it${latestSeq === null ? '' : latestSeq === inForce.config_seq ? ' (the latest window does)' : ` (the latest window has config_seq ${latestSeq})`}`;
    $('cal-since').textContent = `In force ${since}; ${seq}.`;
    $('cal-current').dataset.configSeq = String(inForce.config_seq);
  }

  function renderHistory(): void {
    const list = $('cal-history');
    list.replaceChildren(
      ...history.slice(0, 20).map((c) => {
        const li = document.createElement('li');
        const changed = [...REGISTERS, 'kv', 'ki'].filter((k) => c.from[k as keyof CalRegisters] !== c.to[k as keyof CalRegisters]);
        li.append(
          Object.assign(document.createElement('time'), { textContent: when(c.tMs), dateTime: new Date(c.tMs).toISOString() }),
          document.createTextNode(` ${changed.map((k) => `${k} ${c.from[k as keyof CalRegisters]} → ${c.to[k as keyof CalRegisters]}`).join(', ') || 'same values written again'}`),
        );
        return li;
      }),
    );
    list.dataset.count = String(history.length);
    // The first calibration a device got has no registers before it on record (only the scale): nothing to put back.
    undo.disabled = !history[0] || !REGISTERS.every((k) => typeof history[0]!.from[k] === 'number');
    undo.title = history[0] ? `put back the values from before ${when(history[0].tMs)}` : 'no change recorded';
  }

  async function refresh(): Promise<void> {
    const device = opts.device();
    if (!device) return;
    try {
      inForce = await api<CalibrationJson>(base());
      const to = Date.now();
      const q = query({ device, from: to - HISTORY_SPAN_MS, to, limit: 1000, kind: 'calibration' } satisfies EventsQueryParams);
      const ev = await api<EventsJson>(`/api/events?${q}`);
      history = ev.events.flatMap((e) => {
        try {
          const d = JSON.parse(e.detail) as { from: CalRegisters; to: CalRegisters };
          return [{ tMs: e.t_ms, from: d.from, to: d.to }];
        } catch {
          return [];
        }
      });
      renderCurrent();
      renderHistory();
    } catch (err) {
      say(`calibration unavailable: ${(err as Error).message}`);
    }
  }

  function startStep(kind: Step['kind']): void {
    if (!inForce || inForce.config_seq === null) {
      say('The device has not confirmed its calibration yet (GET …/calibration gives config_seq null): wait until it is attached and measuring.');
      return;
    }
    measuring = { kind, configSeq: inForce.config_seq, spanMs: Number($<HTMLSelectElement>('cal-seconds').value) * 1000, windows: [], skipped: 0 };
    if (kind === 'zero') zero = null;
    else load = null;
    result = null;
    renderResult();
    $(`cal-${kind}-state`).textContent = 'measuring…';
    say(kind === 'zero' ? 'Keep the load off…' : 'Read the reference meter now and enter its V, I and P…');
  }

  /** A live window: part of the step being measured (by the windows' own times, not the page's clock), and the preview. */
  function onWindow(w: WindowMsg): void {
    if (w.device !== opts.device()) return;
    if (latestSeq !== w.config_seq) {
      latestSeq = w.config_seq;
      renderCurrent();
    }
    const m = measuring;
    if (m) {
      // Only windows measured with the calibration being corrected, and none flagged (clipping, saturation, …).
      if (w.config_seq !== m.configSeq || w.flags !== 0) m.skipped++;
      else m.windows.push({ t_ms: w.t_ms, vrms: w.vrms, irms: w.irms, p: w.p, v_dc: w.v_dc, i_dc: w.i_dc, freq_hz: w.freq_hz });
      const spanned = m.windows.length > 1 ? m.windows.at(-1)!.t_ms - m.windows[0]!.t_ms : 0;
      const state = $(`cal-${m.kind}-state`);
      state.textContent = `${m.windows.length} windows, ${(spanned / 1000).toFixed(1)} of ${m.spanMs / 1000} s${m.skipped ? ` (${m.skipped} left out: flagged or another config_seq)` : ''}`;
      if (spanned >= m.spanMs) {
        measuring = null;
        if (m.kind === 'zero') zero = m;
        else load = m;
        state.dataset.windows = String(m.windows.length);
        // The means as measured with the calibration in force, beside what the reference meter reads.
        const mean = (f: (x: CalWindow) => number) => m.windows.reduce((a, x) => a + f(x), 0) / m.windows.length;
        const [v, i, p] = [mean((x) => x.vrms), mean((x) => x.irms), mean((x) => x.p)];
        Object.assign(state.dataset, { vrms: String(v), irms: String(i), p: String(p) });
        state.textContent += `: mean ${v.toFixed(3)} V, ${i.toFixed(4)} A, ${p.toFixed(2)} W`;
        say(m.kind === 'zero' ? 'Zero-load step done: switch the load on and measure it.' : 'Measured: check the result and the preview, then Apply.');
        compute();
      }
    }
    if (result && inForce && w.config_seq === inForce.config_seq) preview(w);
  }

  function reference() {
    const num = (id: string) => Number($<HTMLInputElement>(id).value);
    return { v: num('cal-ref-v'), i: num('cal-ref-i'), p: num('cal-ref-p'), lagging: $<HTMLSelectElement>('cal-load').value === 'lagging' };
  }

  function compute(): void {
    result = null;
    if (load && inForce) {
      try {
        result = computeCalibration(inForce.calibration, load.windows, zero?.windows ?? null, reference(), opts.sampleRateHz());
        say(result.notes.length ? result.notes.join(' ') : 'Ready to apply.');
      } catch (err) {
        if (!(err instanceof CalibrationError)) throw err;
        say(err.message);
      }
    }
    renderResult();
  }

  function renderResult(): void {
    const table = $('cal-result');
    apply.disabled = result === null;
    if (!result || !inForce) {
      table.replaceChildren();
      $('cal-preview').textContent = '';
      return;
    }
    const r = result;
    const was = inForce.calibration;
    const u = (k: (typeof REGISTERS)[number]) => (r.u[k] === 0 ? '—' : `± ${+r.u[k].toPrecision(2)}`);
    table.replaceChildren(
      row(['register', 'in force', 'new', 'uncertainty', 'new, in words'], true),
      ...REGISTERS.map((k) => row([k, String(was[k]), String(r.registers[k]), u(k), describeRegister(k, r.registers, opts.sampleRateHz(), freq())])),
    );
    table.dataset.vGain = String(r.registers.v_gain);
    const n = load!.windows.length;
    $('cal-method').textContent =
      `Uncertainty: one standard error of the mean over the windows used (their standard deviation / √n; load: n = ${n}` +
      `${zero ? `, zero load: n = ${zero.windows.length}` : ', no zero-load step: offsets kept'}). It leaves out the reference meter's own accuracy and the registers' rounding.`;
    preview(load!.windows.at(-1)!);
  }

  function preview(w: CalWindow): void {
    if (!result || !inForce) return;
    const ref = reference();
    const c = correctWindow(w, inForce.calibration, result.registers, ref.lagging, opts.sampleRateHz());
    const line = (q: string, now: number, then: number, refValue: number, unit: string) => `${q} ${now.toFixed(3)} → ${then.toFixed(3)} ${unit} (reference ${+refValue.toPrecision(6)} ${unit})`;
    $('cal-preview').textContent = `Preview of the latest window: ${line('V', w.vrms, c.vrms, ref.v, 'V')}; ${line('I', w.irms, c.irms, ref.i, 'A')}; ${line('P', w.p, c.p, ref.p, 'W')}`;
  }

  async function put(cal: CalibrationBodyJson, what: string): Promise<void> {
    try {
      const r = await api<CalibrationJson>(base(), { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(cal) });
      say(`${what}: in force from config_seq ${r.config_seq ?? '(not confirmed yet)'}.`);
      result = null;
      load = null;
      zero = null;
      for (const k of ['zero', 'load']) $(`cal-${k}-state`).textContent = '';
      renderResult();
    } catch (err) {
      say(`${what} failed: ${(err as Error).message}`);
    }
    await refresh();
  }

  $('cal-zero').addEventListener('click', () => startStep('zero'));
  $('cal-measure').addEventListener('click', () => startStep('load'));
  for (const id of ['cal-ref-v', 'cal-ref-i', 'cal-ref-p', 'cal-load']) $(id).addEventListener('input', compute);
  apply.addEventListener('click', () => {
    if (result) void put(result.registers, 'Applied');
  });
  undo.addEventListener('click', () => {
    if (history[0]) void put(history[0].from, `Undone (the values from before ${when(history[0].tMs)})`);
  });
  return { load: refresh, window: onWindow };
}
