// The energy view: bars per hour of a day, day of a week or month, or month of a year (the user's local calendar,
// computed by the server, so a DST day has 23 or 25 bars), each exact from the ledger and priced with the stored
// tariff, ghost bars for the period before, and the energy and cost of any run of bars the user selects (click,
// shift-click, or arrows and shift-arrows on the keyboard; a tap on a phone).

import { api, query, type EnergyPeriodJson, type EnergyPeriodsJson, type EnergyPeriodsQueryParams } from './api.ts';

export type EnergyView = 'day' | 'week' | 'month' | 'year';

const BUCKET: Record<EnergyView, EnergyPeriodsQueryParams['bucket']> = { day: 'hour', week: 'day', month: 'day', year: 'month' };
const NAME: Record<EnergyView, string> = { day: 'day', week: 'week', month: 'month', year: 'year' };

/** Local start of the view holding `t` and of the one after it (the browser's zone is the calendar's). */
export function viewRange(view: EnergyView, t: Date, step = 0): { from: Date; to: Date } {
  const y = t.getFullYear();
  const m = t.getMonth();
  const d = t.getDate();
  switch (view) {
    case 'day':
      return { from: new Date(y, m, d + step), to: new Date(y, m, d + step + 1) };
    case 'week': {
      const monday = d - ((t.getDay() + 6) % 7) + 7 * step;
      return { from: new Date(y, m, monday), to: new Date(y, m, monday + 7) };
    }
    case 'month':
      return { from: new Date(y, m + step, 1), to: new Date(y, m + step + 1, 1) };
    case 'year':
      return { from: new Date(y + step, 0, 1), to: new Date(y + step + 1, 0, 1) };
  }
}

/** kWh from exact nWh with 3 decimals (1 Wh), as a meter register reads. */
export function kwh(nwh: bigint): string {
  const negative = nwh < 0n;
  const wh = ((negative ? -nwh : nwh) + 500_000_000n) / 1_000_000_000n;
  return `${negative ? '−' : ''}${wh / 1000n}.${String(wh % 1000n).padStart(3, '0')}`;
}

export function money(value: number | null, currency: string | null): string {
  if (value === null || currency === null) return '';
  try {
    return new Intl.NumberFormat(undefined, { style: 'currency', currency }).format(value);
  } catch {
    return `${value.toFixed(2)} ${currency}`; // not an ISO 4217 code: the number and what the user typed
  }
}

function barLabel(view: EnergyView, p: EnergyPeriodJson): string {
  const d = new Date(p.start_ms);
  if (view === 'day') return String(d.getHours()).padStart(2, '0');
  if (view === 'week') return d.toLocaleDateString(undefined, { weekday: 'short' });
  if (view === 'month') return String(d.getDate());
  return d.toLocaleDateString(undefined, { month: 'short' });
}

function percent(now: bigint, before: bigint): string {
  if (before === 0n) return '';
  const change = (Number(now - before) / Number(before < 0n ? -before : before)) * 100;
  return ` (${change >= 0 ? '+' : '−'}${Math.abs(change).toFixed(1)} %)`;
}

export class EnergyPanel {
  view: EnergyView = 'day';
  /** Views back from the current one (0 = the one holding now). */
  offset = 0;
  private data: EnergyPeriodsJson | undefined;
  /** Selected bars [first, last], inclusive; null: none. */
  private sel: [number, number] | null = null;
  private anchor = 0;
  private seq = 0;

  constructor(
    private readonly el: { bars: HTMLElement; title: HTMLElement; summary: HTMLElement; selection: HTMLElement },
    private readonly device: () => string | null,
    private readonly zone: string,
  ) {
    el.bars.addEventListener('keydown', (e) => this.onKey(e));
  }

  setView(view: EnergyView): void {
    this.view = view;
    this.offset = 0;
    void this.load();
  }

  step(delta: number): void {
    this.offset = Math.min(0, this.offset + delta);
    void this.load();
  }

  async load(): Promise<void> {
    const device = this.device();
    if (!device) return;
    const seq = ++this.seq;
    const { from, to } = viewRange(this.view, new Date(), this.offset);
    const q = query({ from: from.getTime(), to: to.getTime(), bucket: BUCKET[this.view], tz: this.zone } satisfies EnergyPeriodsQueryParams);
    try {
      const data = await api<EnergyPeriodsJson>(`/api/devices/${encodeURIComponent(device)}/energy/periods?${q}`);
      if (seq !== this.seq) return;
      // The minute's refresh of the same bars keeps the user's selection; other bars start without one.
      if (this.data?.periods[0]?.start_ms !== data.periods[0]?.start_ms || this.data?.periods.length !== data.periods.length) this.sel = null;
      this.data = data;
      this.render();
    } catch (err) {
      this.el.summary.textContent = `energy unavailable: ${(err as Error).message}`;
    }
  }

  private render(): void {
    const d = this.data!;
    const view = this.view;
    const first = new Date(d.periods[0]!.start_ms);
    this.el.title.textContent =
      view === 'day' ? first.toLocaleDateString(undefined, { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' })
        : view === 'week' ? `week of ${first.toLocaleDateString(undefined, { year: 'numeric', month: 'long', day: 'numeric' })}`
          : view === 'month' ? first.toLocaleDateString(undefined, { year: 'numeric', month: 'long' })
            : String(first.getFullYear());
    const all = [...d.periods, ...d.previous.periods].map((p) => Math.abs(p.energy_wh));
    const max = Math.max(...all, 1e-9);
    this.el.bars.replaceChildren(
      ...d.periods.map((p, k) => {
        const before = d.previous.periods[k];
        const b = document.createElement('button');
        b.type = 'button';
        b.className = 'ebar';
        b.dataset.k = String(k);
        b.dataset.nwh = p.energy_nwh;
        b.dataset.start = String(p.start_ms);
        b.dataset.end = String(p.end_ms);
        b.tabIndex = k === 0 ? 0 : -1;
        const cost = money(p.cost, d.currency);
        b.title = `${new Date(p.start_ms).toLocaleString()} · ${kwh(BigInt(p.energy_nwh))} kWh${cost ? ` · ${cost}` : ''}`;
        b.setAttribute('aria-label', b.title);
        const ghost = document.createElement('span');
        ghost.className = 'ghost';
        ghost.style.height = `${(Math.abs(before?.energy_wh ?? 0) / max) * 100}%`;
        const fill = document.createElement('span');
        fill.className = p.energy_wh < 0 ? 'fill neg' : 'fill';
        fill.style.height = `${(Math.abs(p.energy_wh) / max) * 100}%`;
        const label = document.createElement('span');
        label.className = 'elabel';
        label.textContent = barLabel(view, p);
        b.append(ghost, fill, label);
        b.addEventListener('click', (e) => this.select(k, e.shiftKey));
        return b;
      }),
    );
    this.el.bars.dataset.periods = String(d.periods.length);
    const now = BigInt(d.total.energy_nwh);
    const before = BigInt(d.previous.total.energy_nwh);
    const cost = money(d.total.cost, d.currency);
    const prevCost = money(d.previous.total.cost, d.currency);
    this.el.summary.dataset.nwh = d.total.energy_nwh;
    this.el.summary.textContent =
      `This ${NAME[view]}: ${kwh(now)} kWh${cost ? ` · ${cost}` : ''} — the ${NAME[view]} before: ${kwh(before)} kWh${prevCost ? ` · ${prevCost}` : ''}` +
      `${percent(now, before)}${d.currency === null ? ' · set a tariff to see costs' : ''}`;
    this.renderSelection();
  }

  private select(k: number, extend: boolean): void {
    if (!extend || this.sel === null) this.anchor = k;
    this.sel = [Math.min(this.anchor, k), Math.max(this.anchor, k)];
    this.renderSelection();
  }

  private onKey(e: KeyboardEvent): void {
    const bars = [...this.el.bars.querySelectorAll<HTMLButtonElement>('.ebar')];
    const at = bars.indexOf(document.activeElement as HTMLButtonElement);
    if (at < 0) return;
    const move = e.key === 'ArrowRight' ? 1 : e.key === 'ArrowLeft' ? -1 : 0;
    if (move === 0) {
      if (e.key === 'Escape') {
        this.sel = null;
        this.renderSelection();
      }
      return;
    }
    e.preventDefault();
    const k = Math.max(0, Math.min(bars.length - 1, at + move));
    bars[at]!.tabIndex = -1;
    bars[k]!.tabIndex = 0;
    bars[k]!.focus();
    this.select(k, e.shiftKey);
  }

  private renderSelection(): void {
    const d = this.data;
    const out = this.el.selection;
    for (const b of this.el.bars.querySelectorAll<HTMLElement>('.ebar')) {
      const k = Number(b.dataset.k);
      b.setAttribute('aria-pressed', String(this.sel !== null && k >= this.sel[0] && k <= this.sel[1]));
    }
    if (!d || this.sel === null) {
      out.textContent = 'Click a bar (shift-click or shift-arrows for a run of them) for its energy and cost.';
      delete out.dataset.nwh;
      return;
    }
    const picked = d.periods.slice(this.sel[0], this.sel[1] + 1);
    const nwh = picked.reduce((s, p) => s + BigInt(p.energy_nwh), 0n);
    const costs = picked.map((p) => p.cost);
    const cost = costs.every((c) => c !== null) ? money(costs.reduce((s, c) => s + c!, 0), d.currency) : '';
    const a = new Date(picked[0]!.start_ms).toLocaleString();
    const z = new Date(picked.at(-1)!.end_ms).toLocaleString();
    out.dataset.nwh = nwh.toString();
    out.textContent = `Selected ${a} – ${z}: ${kwh(nwh)} kWh${cost ? ` · ${cost}` : ''}`;
  }
}

/** Binds the energy card's markup (index.html) and keeps the view fresh; main.ts calls load() on a device change. */
export function setupEnergyView(device: () => string | null, zone: string): EnergyPanel {
  const q = <T extends HTMLElement>(sel: string) => document.querySelector<T>(sel)!;
  const panel = new EnergyPanel(
    { bars: q('#energy-bars'), title: q('#energy-title'), summary: q('#energy-summary'), selection: q('#energy-selection') },
    device,
    zone,
  );
  const views = [...document.querySelectorAll<HTMLButtonElement>('button[data-energy-view]')];
  const press = () => {
    for (const b of views) b.setAttribute('aria-pressed', String(b.dataset.energyView === panel.view));
  };
  for (const b of views) {
    b.addEventListener('click', () => {
      panel.setView(b.dataset.energyView as EnergyView);
      press();
    });
  }
  press();
  q('#energy-prev').addEventListener('click', () => panel.step(-1));
  q('#energy-next').addEventListener('click', () => panel.step(1));
  // The current period fills in as energy is booked; a past one never changes, but a minute is cheap.
  setInterval(() => void panel.load(), 60_000);
  return panel;
}
