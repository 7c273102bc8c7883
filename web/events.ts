// The event log: restarts of serve, link drops, device resets, calibration changes, energy gaps, stretches with
// no data and disk-full periods, newest first; each entry opens the history around it (a click, Enter, a tap).

import { api, query, type EventsJson, type EventsQueryParams } from './api.ts';

const TITLE: Record<string, string> = {
  serve_start: 'crabwatt started',
  serve_stop: 'crabwatt stopped',
  link_connected: 'Link up',
  link_disconnected: 'Link lost',
  link_reconnecting: 'Link lost, reconnecting',
  link_bootloader: 'Board in bootloader',
  link_absent: 'No device',
  calibration: 'Calibration changed',
  disk_full: 'Disk full: not stored',
  write_failing: 'Database errors: not stored',
  device_first_seen: 'Device first seen',
  device_reset: 'Device reset',
  energy_gap: 'Energy gap',
  no_data: 'No data',
};

/** The history window an event opens: the event with 10 min either side, or the period with a tenth of it. */
export function historyWindow(tMs: number, untilMs: number | null): { from: number; to: number } {
  if (untilMs === null || untilMs <= tMs) return { from: tMs - 600_000, to: tMs + 600_000 };
  const pad = Math.max(60_000, (untilMs - tMs) / 10);
  return { from: Math.round(tMs - pad), to: Math.round(untilMs + pad) };
}

function describe(kind: string, detail: string): string {
  if (kind !== 'calibration') return detail;
  try {
    const { from, to } = JSON.parse(detail) as { from: Record<string, number>; to: Record<string, number> };
    const changed = Object.keys(to).filter((k) => from[k] !== to[k]);
    return changed.map((k) => `${k} ${from[k] ?? '—'} → ${to[k]}`).join(', ') || 'same values written again';
  } catch {
    return detail;
  }
}

export function setupEventLog(device: () => string | null, open: (from: number, to: number) => void): { load: () => Promise<void> } {
  const list = document.querySelector<HTMLElement>('#event-list')!;
  const status = document.querySelector<HTMLElement>('#event-status')!;
  const span = document.querySelector<HTMLSelectElement>('#event-span')!;
  let seq = 0;
  const load = async () => {
    const d = device();
    if (!d) return;
    const mine = ++seq;
    const to = Date.now();
    const q = query({ device: d, from: to - Number(span.value), to, limit: 200 } satisfies EventsQueryParams);
    try {
      const r = await api<EventsJson>(`/api/events?${q}`);
      if (mine !== seq) return;
      list.replaceChildren(
        ...r.events.map((e) => {
          const li = document.createElement('li');
          const b = document.createElement('button');
          b.type = 'button';
          b.className = 'event';
          b.dataset.kind = e.kind;
          b.dataset.t = String(e.t_ms);
          const when = new Date(e.t_ms).toLocaleString();
          const until = e.until_ms === null ? '' : ` – ${new Date(e.until_ms).toLocaleTimeString()}`;
          b.append(
            Object.assign(document.createElement('time'), { textContent: `${when}${until}`, dateTime: new Date(e.t_ms).toISOString() }),
            Object.assign(document.createElement('strong'), { textContent: TITLE[e.kind] ?? e.kind }),
            Object.assign(document.createElement('span'), { textContent: describe(e.kind, e.detail) }),
          );
          b.addEventListener('click', () => {
            const w = historyWindow(e.t_ms, e.until_ms);
            open(w.from, w.to);
          });
          li.append(b);
          return li;
        }),
      );
      list.dataset.count = String(r.events.length);
      status.textContent = r.events.length === 0 ? 'Nothing happened in this span.' : 'Click an entry to see it in the history.';
    } catch (err) {
      status.textContent = `events unavailable: ${(err as Error).message}`;
    }
  };
  span.addEventListener('change', () => void load());
  setInterval(() => void load(), 30_000);
  return { load };
}
