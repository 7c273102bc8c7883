// The power-quality view (docs/power-quality.md): the harmonic spectrum of the latest 10-minute interval (V
// and I in % of the fundamental, with THD), the week's EN 50160-like summary, and the dips, swells and
// interruptions, each opening its Urms(1/2) trace.

import { api, query, type DeviceJson, type PqEventJson, type PqEventsJson, type PqHarmonicsJson, type PqRangeQueryParams } from './api.ts';
import { en50160Summary } from './en50160.ts';
import { fixed } from './format.ts';
import { SpectrumChart, TraceChart } from './pq-charts.ts';

const WEEK_MS = 7 * 86_400_000;
const KIND: Record<string, string> = { dip: 'Dip', swell: 'Swell', interruption: 'Interruption' };

const $ = <T extends HTMLElement = HTMLElement>(sel: string): T => {
  const el = document.querySelector<T>(sel);
  if (!el) throw new Error(`dashboard markup lacks ${sel}`);
  return el;
};

const percent = (ratio: number | null): string => (ratio === null ? '—' : `${(100 * ratio).toFixed(2)} %`);

export function setupPqView(device: () => DeviceJson | null): { load: () => Promise<void> } {
  const spectrum = new SpectrumChart($('#pq-spectrum'));
  const trace = new TraceChart($('#pq-trace'));
  const thd = $('#pq-thd');
  const status = $('#pq-status');
  const summary = $<HTMLTableSectionElement>('#pq-summary tbody');
  const list = $('#pq-event-list');
  const traceTitle = $('#pq-trace-title');
  let seq = 0;

  const openEvent = async (id: string, e: PqEventsJson['events'][number]) => {
    const one = await api<PqEventJson>(`/api/devices/${encodeURIComponent(id)}/pq/events/${e.id}`);
    trace.show(one.trace.t_s, one.trace.urms_v);
    traceTitle.textContent = `${KIND[one.kind] ?? one.kind} at ${new Date(one.t_start_ms).toLocaleString()}: ` +
      `${fixed(one.duration_s * 1000, 0)} ms, ${one.kind === 'swell' ? 'max' : 'residual'} ${fixed(one.extreme_v, 1)} V`;
    $('#pq-trace').dataset.event = String(one.id);
  };

  const load = async () => {
    const d = device();
    if (!d) return;
    const mine = ++seq;
    const to = Date.now();
    const q = query({ from: to - WEEK_MS, to, limit: 1008 } satisfies PqRangeQueryParams);
    const base = `/api/devices/${encodeURIComponent(d.id)}/pq`;
    try {
      const [h, ev] = await Promise.all([api<PqHarmonicsJson>(`${base}/harmonics?${q}`), api<PqEventsJson>(`${base}/events?${q}`)]);
      if (mine !== seq) return;
      const last = h.aggregates.at(-1);
      if (last) {
        spectrum.show(last.h_v, last.h_i);
        thd.textContent = `THD V ${percent(last.thd_v)} · THD I ${percent(last.thd_i)} · ${fixed(last.vrms, 1)} V ${fixed(last.irms, 2)} A · ` +
          `10 min to ${new Date(last.t_end_ms).toLocaleTimeString()}${last.flagged ? ' (flagged: an event touched it)' : ''}`;
      } else thd.textContent = 'No 10-minute value yet (the first comes at the next 10-minute boundary of the device).';
      const declared = d.pq?.declared_v ?? 230;
      summary.replaceChildren(
        ...en50160Summary(h.aggregates, declared).map((r) => {
          const tr = document.createElement('tr');
          tr.dataset.passes = String(r.passes);
          for (const text of [r.label, r.share === null ? '—' : `${(100 * r.share).toFixed(1)} %`, r.passes === null ? '—' : r.passes ? 'yes' : 'no']) {
            tr.append(Object.assign(document.createElement('td'), { textContent: text }));
          }
          return tr;
        }),
      );
      $('#pq-summary').dataset.values = String(h.aggregates.length);
      list.replaceChildren(
        ...[...ev.events].reverse().map((e) => {
          const b = Object.assign(document.createElement('button'), { type: 'button', className: 'event' });
          b.dataset.kind = e.kind;
          b.append(
            Object.assign(document.createElement('time'), { textContent: new Date(e.t_start_ms).toLocaleString(), dateTime: new Date(e.t_start_ms).toISOString() }),
            Object.assign(document.createElement('strong'), { textContent: KIND[e.kind] ?? e.kind }),
            Object.assign(document.createElement('span'), {
              textContent: `${fixed(e.duration_s * 1000, 0)} ms, ${e.kind === 'swell' ? 'max' : 'residual'} ${fixed(e.extreme_v, 1)} V${e.cut ? ' (cut by a gap)' : ''}`,
            }),
          );
          b.addEventListener('click', () => void openEvent(d.id, e).catch((err: Error) => (status.textContent = `trace unavailable: ${err.message}`)));
          const li = document.createElement('li');
          li.append(b);
          return li;
        }),
      );
      list.dataset.count = String(ev.events.length);
      status.textContent = d.pq?.error ?? (ev.events.length === 0 ? 'No dip, swell or interruption this week.' : 'Click an event to see its Urms(1/2).');
    } catch (err) {
      status.textContent = `power quality unavailable: ${(err as Error).message}`;
    }
  };
  setInterval(() => void load(), 60_000);
  return { load };
}
