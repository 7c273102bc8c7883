// The three uPlot charts: live power (ring of recent windows), history (min/max band, gaps, zoom and pan)
// and the waveform of a capture. Each chart follows its container's size.

import uPlot from 'uplot';
import type { Buckets, HistoryFieldName, HistoryJson, WaveformJson } from './api.ts';
import { captureTimesMs } from './capture.ts';
import { isoDate, isoTime, si, timeTicks } from './format.ts';

const AXIS_FONT = '12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
const TICK_PX = 10;
const GAP_PX = 5;
export const AXIS = {
  stroke: '#9aa7b8', font: AXIS_FONT, gap: GAP_PX, grid: { stroke: '#2a3442', width: 1 }, ticks: { stroke: '#2a3442', width: 1, size: TICK_PX },
};

const measure = document.createElement('canvas').getContext('2d')!;

/** A value axis as wide as its widest label, so no label loses its first digit ('2.120 kW', '−0.85 A'). */
export function labelsWidth(_u: uPlot, values: string[] | null): number {
  measure.font = AXIS_FONT;
  const widest = Math.max(0, ...(values ?? []).map((v) => measure.measureText(String(v)).width));
  return Math.ceil(widest) + TICK_PX + GAP_PX + 4;
}

/**
 * A time axis: 24-hour times with the date where it changes (format.ts), ticks far enough apart not to collide.
 * The widest labels ('12:34:56.789', and the date line '2026-12-07' under the first tick and each new day)
 * are ~80 px in the axis font: 60 px between ticks let neighbours overlap when the data's span picked
 * sub-second steps, so ticks keep 90 px.
 */
const TIME_AXIS = {
  ...AXIS,
  space: 90,
  // uPlot's own steps go from 1 to 5 minutes: a 5-minute span on a phone would get one tick. Seconds.
  incrs: [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800,
    3600, 7200, 10_800, 21_600, 43_200, 86_400, 2 * 86_400, 7 * 86_400, 14 * 86_400, 28 * 86_400, 91 * 86_400, 182 * 86_400, 364 * 86_400,
  ],
  values: (_u: uPlot, splits: number[], _axis: number, _space: number, incr: number) => timeTicks(splits.map((s) => s * 1000), incr * 1000),
};

/** The cursor's time in the legend, in the axis's form. */
const timeValue = (_u: uPlot, v: number | null): string => (v === null ? '—' : `${isoDate(v * 1000)} ${isoTime(v * 1000, true)}`);

/** Room right of the plot for half of the last time label, which is centred on its tick. */
const PADDING: uPlot.Padding = [null, 36, null, null];
export const COLORS = { p: '#f5a524', s: '#5aa9e6', band: 'rgba(245,165,36,0.18)', v: '#5aa9e6', i: '#f5a524', gap: 'rgba(154,167,184,0.10)' };

/** Plot height from the container's --chart-h (set per breakpoint in style.css); the legend goes below. */
export function chartHeight(el: HTMLElement): number {
  const h = parseFloat(getComputedStyle(el).getPropertyValue('--chart-h'));
  return Number.isFinite(h) && h > 0 ? h : 240;
}

/** Resizes a chart with its container; returns the observer so callers could disconnect it. */
export function follow(el: HTMLElement, plot: uPlot): ResizeObserver {
  let width = el.clientWidth;
  let height = chartHeight(el);
  const ro = new ResizeObserver(() => {
    // The legend below the plot changes the container's height: react to width and breakpoint only.
    if (el.clientWidth === width && chartHeight(el) === height) return;
    width = el.clientWidth;
    height = chartHeight(el);
    plot.setSize({ width, height });
  });
  ro.observe(el);
  return ro;
}

const PREFIX: [number, string][] = [
  [1e6, 'M'],
  [1e3, 'k'],
  [1, ''],
  [1e-3, 'm'],
  [1e-6, 'µ'],
];

/** Axis labels with one SI prefix for the whole axis and only the decimals the tick step needs. */
const siAxis = (unit: string) => (_u: uPlot, splits: number[]) => {
  const mag = Math.max(...splits.map((v) => Math.abs(v)));
  const [scale, prefix] = PREFIX.find(([s]) => mag >= s) ?? [1, ''];
  const step = splits.length > 1 ? Math.abs(splits[1]! - splits[0]!) / scale : 1;
  const decimals = step > 0 ? Math.min(6, Math.max(0, -Math.floor(Math.log10(step) + 1e-9))) : 0;
  return splits.map((v) => `${(v / scale).toFixed(decimals)} ${prefix}${unit}`);
};

// ---------------------------------------------------------------------------------------------------
// Live power: windows arrive at up to ~1 kHz; they are merged into ≥100 ms buckets and redrawn at most
// once per animation frame, so the browser never does more than one setData per paint.

const LIVE_BUCKET_MS = 100;

export class LiveChart {
  readonly plot: uPlot;
  private t: number[] = [];
  private p: number[] = [];
  private s: number[] = [];
  private counts: number[] = [];
  private dirty = false;
  private frame = 0;

  constructor(
    private readonly el: HTMLElement,
    private readonly spanMs: number,
  ) {
    this.plot = new uPlot(
      {
        width: el.clientWidth,
        height: chartHeight(el),
        padding: PADDING,
        legend: { show: true, live: true },
        cursor: { drag: { x: false, y: false } },
        // Always the whole span ending at the newest window, so the axis does not jump as data fills in.
        scales: {
          x: {
            time: true,
            range: (_u, _min, max) => {
              const end = max === null || max === undefined || !Number.isFinite(max) ? Date.now() / 1000 : max;
              return [end - spanMs / 1000, end];
            },
          },
        },
        series: [
          { label: 'Time', value: timeValue },
          { label: 'P', stroke: COLORS.p, fill: 'rgba(245,165,36,0.10)', width: 2, points: { show: false }, value: (_u, v) => fmt(v, 'W') },
          { label: 'S', stroke: COLORS.s, width: 1, dash: [4, 4], points: { show: false }, value: (_u, v) => fmt(v, 'VA') },
        ],
        axes: [TIME_AXIS, { ...AXIS, size: labelsWidth, values: siAxis('W') }],
      },
      [[], [], []],
      el,
    );
    follow(el, this.plot);
  }

  get pointCount(): number {
    return this.t.length;
  }

  push(tMs: number, p: number, s: number): void {
    const last = this.t.length - 1;
    const tS = tMs / 1000;
    if (last >= 0 && tS - this.t[last]! < LIVE_BUCKET_MS / 1000) {
      const n = this.counts[last]! + 1;
      this.p[last] = this.p[last]! + (p - this.p[last]!) / n;
      this.s[last] = this.s[last]! + (s - this.s[last]!) / n;
      this.counts[last] = n;
    } else {
      this.t.push(tS);
      this.p.push(p);
      this.s.push(s);
      this.counts.push(1);
    }
    const oldest = tS - this.spanMs / 1000;
    let drop = 0;
    while (drop < this.t.length && this.t[drop]! < oldest) drop++;
    if (drop > 0) {
      this.t.splice(0, drop);
      this.p.splice(0, drop);
      this.s.splice(0, drop);
      this.counts.splice(0, drop);
    }
    this.schedule();
  }

  /**
   * The span before the first live window, from the history (times in ms; null buckets are skipped), so the
   * chart shows the last minutes at once instead of only what arrived since the page opened.
   */
  fill(tMs: number[], p: (number | null)[], s: (number | null)[]): void {
    const firstLive = this.t.length > 0 ? this.t[0]! : Infinity;
    const t: number[] = [];
    const pp: number[] = [];
    const ss: number[] = [];
    tMs.forEach((ms, k) => {
      const tS = ms / 1000;
      if (tS >= firstLive || p[k] === null || s[k] === null) return;
      t.push(tS);
      pp.push(p[k]!);
      ss.push(s[k]!);
    });
    this.t = t.concat(this.t);
    this.p = pp.concat(this.p);
    this.s = ss.concat(this.s);
    this.counts = t.map(() => 1).concat(this.counts);
    if (t.length > 0) this.el.dataset.filledFrom = String(t[0]! * 1000);
    this.schedule();
  }

  clear(): void {
    delete this.el.dataset.filledFrom;
    this.t = [];
    this.p = [];
    this.s = [];
    this.counts = [];
    this.schedule();
  }

  private schedule(): void {
    this.dirty = true;
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      if (!this.dirty) return;
      this.dirty = false;
      this.plot.setData([this.t, this.p, this.s]);
      this.el.dataset.points = String(this.t.length);
    });
  }
}

function fmt(v: number | null, unit: string): string {
  const f = si(v, unit);
  return `${f.text} ${f.unit}`;
}

// ---------------------------------------------------------------------------------------------------
// History: mean line plus a min/max band; null buckets are gaps (the line breaks and the span is shaded).
// Drag selects a range to zoom into; onRange is called with the new [fromMs, toMs] to re-query the server.

export interface HistoryField {
  key: HistoryFieldName;
  label: string;
  unit: string;
}

export const HISTORY_FIELDS: Record<string, HistoryField> = {
  p: { key: 'p', label: 'P', unit: 'W' },
  s: { key: 's', label: 'S', unit: 'VA' },
  vrms: { key: 'vrms', label: 'Vrms', unit: 'V' },
  irms: { key: 'irms', label: 'Irms', unit: 'A' },
  pf: { key: 'pf', label: 'PF', unit: '' },
  freq_hz: { key: 'freq_hz', label: 'f', unit: 'Hz' },
};

export class HistoryChart {
  readonly plot: uPlot;
  private field: HistoryField;
  private gaps: [number, number][] = [];
  /** Set while we change the x scale ourselves, so only user zooms trigger a new query. */
  private programmatic = false;

  constructor(
    private readonly el: HTMLElement,
    field: HistoryField,
    private readonly onRange: (fromMs: number, toMs: number) => void,
  ) {
    this.field = field;
    this.plot = this.make();
    follow(el, this.plot);
  }

  private make(): uPlot {
    const field = this.field;
    return new uPlot(
      {
        width: this.el.clientWidth,
        height: chartHeight(this.el),
        padding: PADDING,
        legend: { show: true, live: true },
        cursor: { drag: { x: true, y: false, setScale: true } },
        scales: { x: { time: true } },
        series: [
          { label: 'Time', value: timeValue },
          {
            label: `${field.label} mean`, stroke: COLORS.p, width: 2, spanGaps: false, value: (_u, v) => fmt(v, field.unit),
            // Each window is a point at the finest level: drawn as one, however few there are.
            points: { show: () => this.el.dataset.level === 'raw', size: 4, fill: COLORS.p },
          },
          { label: 'min', stroke: 'rgba(245,165,36,0.45)', width: 1, spanGaps: false, value: (_u, v) => fmt(v, field.unit) },
          { label: 'max', stroke: 'rgba(245,165,36,0.45)', width: 1, spanGaps: false, value: (_u, v) => fmt(v, field.unit) },
        ],
        bands: [{ series: [3, 2], fill: COLORS.band }],
        axes: [TIME_AXIS, { ...AXIS, size: labelsWidth, values: siAxis(field.unit) }],
        hooks: {
          setScale: [
            (u, key) => {
              if (key !== 'x' || this.programmatic) return;
              const min = u.scales.x!.min;
              const max = u.scales.x!.max;
              if (min !== undefined && max !== undefined && max > min) this.onRange(Math.round(min * 1000), Math.round(max * 1000));
            },
          ],
          drawClear: [(u) => this.drawGaps(u)],
        },
      },
      [[], [], [], []],
      this.el,
    );
  }

  setField(field: HistoryField): void {
    this.field = field;
    this.plot.destroy();
    const plot = this.make();
    (this as { plot: uPlot }).plot = plot;
    follow(this.el, plot);
  }

  /** Shows a server answer and fixes the x range to what was asked, so leading/trailing gaps show. */
  show(h: HistoryJson): void {
    const b: Buckets = h.series[this.field.key] ?? { mean: [], min: [], max: [] };
    const xs = h.t.map((t) => t / 1000);
    this.gaps = findGaps(xs, b.mean, h.bucket_ms / 1000);
    // Before the data: the points of the mean series are drawn by level.
    Object.assign(this.el.dataset, {
      from: String(h.from),
      to: String(h.to),
      buckets: String(h.t.length),
      gaps: String(this.gaps.length),
      level: h.level,
    });
    this.programmatic = true;
    try {
      this.plot.batch(() => {
        this.plot.setData([xs, b.mean, b.min, b.max], false);
        this.plot.setScale('x', { min: h.from / 1000, max: h.to / 1000 });
      });
    } finally {
      this.programmatic = false;
    }
  }

  private drawGaps(u: uPlot): void {
    if (this.gaps.length === 0) return;
    const ctx = u.ctx;
    ctx.save();
    ctx.fillStyle = COLORS.gap;
    const top = u.bbox.top;
    const height = u.bbox.height;
    for (const [a, b] of this.gaps) {
      const x0 = u.valToPos(a, 'x', true);
      const x1 = u.valToPos(b, 'x', true);
      const left = Math.max(u.bbox.left, x0);
      const right = Math.min(u.bbox.left + u.bbox.width, x1);
      if (right > left) ctx.fillRect(left, top, right - left, height);
    }
    ctx.restore();
  }
}

/** Runs of null buckets as [startS, endS] spans. */
function findGaps(xs: number[], mean: (number | null)[], bucketS: number): [number, number][] {
  const out: [number, number][] = [];
  let start: number | null = null;
  for (let k = 0; k < xs.length; k++) {
    if (mean[k] === null) {
      if (start === null) start = xs[k]!;
    } else if (start !== null) {
      out.push([start, xs[k]!]);
      start = null;
    }
  }
  if (start !== null && xs.length > 0) out.push([start, xs[xs.length - 1]! + bucketS]);
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Waveform: v and i of a capture in volts and amperes against milliseconds from the trigger.

export class WaveformChart {
  readonly plot: uPlot;

  constructor(private readonly el: HTMLElement) {
    this.plot = new uPlot(
      {
        width: el.clientWidth,
        height: chartHeight(el),
        legend: { show: true, live: true },
        cursor: { drag: { x: true, y: false, setScale: true } },
        scales: { x: { time: false }, v: { auto: true }, i: { auto: true } },
        series: [
          { label: 't', value: (_u, v) => (v === null ? '—' : `${v.toFixed(3)} ms`) },
          { label: 'v', scale: 'v', stroke: COLORS.v, width: 1.5, points: { show: false }, value: (_u, v) => fmt(v, 'V') },
          { label: 'i', scale: 'i', stroke: COLORS.i, width: 1.5, points: { show: false }, value: (_u, v) => fmt(v, 'A') },
        ],
        axes: [
          { ...AXIS, values: (_u, s) => s.map((v) => `${+v.toFixed(3)} ms`) },
          { ...AXIS, scale: 'v', size: labelsWidth, values: siAxis('V') },
          { ...AXIS, scale: 'i', side: 1, size: labelsWidth, values: siAxis('A'), grid: { show: false } },
        ],
      },
      [[], [], []],
      el,
    );
    follow(el, this.plot);
  }

  show(c: WaveformJson): void {
    const t = captureTimesMs(c);
    this.plot.setData([t, c.v.map((x) => x * c.kv), c.i.map((x) => x * c.ki)]);
    this.el.dataset.pairs = String(c.v.length);
    this.el.dataset.decimation = String(c.decimation);
    this.el.dataset.spanMs = t.length > 0 ? String(t[t.length - 1]! - t[0]!) : '0';
  }
}
