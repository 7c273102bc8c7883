// The power-quality charts: the harmonic spectrum of V and I as bars in % of the fundamental (orders 2 … 50),
// and an event's Urms(1/2) trace.

import uPlot from 'uplot';
import { AXIS, chartHeight, COLORS, follow, labelsWidth } from './charts.ts';

const pct = (_u: uPlot, v: number | null): string => (v === null ? '—' : `${v.toFixed(2)} %`);

export class SpectrumChart {
  readonly plot: uPlot;

  constructor(private readonly el: HTMLElement) {
    // V left of each order's tick, I right of it.
    const bars = (align: -1 | 1) => uPlot.paths.bars!({ size: [0.4, 10], gap: 1, align });
    this.plot = new uPlot(
      {
        width: el.clientWidth,
        height: chartHeight(el),
        legend: { show: true, live: true },
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: false, range: [1.5, 50.5] }, y: { auto: true, range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
        series: [
          { label: 'order', value: (_u, v) => (v === null ? '—' : `H${v}`) },
          { label: 'V', stroke: COLORS.v, fill: COLORS.v, paths: bars(-1), points: { show: false }, value: pct },
          { label: 'I', stroke: COLORS.i, fill: 'rgba(245,165,36,0.55)', paths: bars(1), points: { show: false }, value: pct },
        ],
        axes: [
          { ...AXIS, values: (_u, s) => s.map((v) => (Number.isInteger(v) ? `${v}` : '')) },
          { ...AXIS, size: labelsWidth, values: (_u, s) => s.map((v) => `${+v.toFixed(2)} %`) },
        ],
      },
      [[], [], []],
      el,
    );
    follow(el, this.plot);
  }

  /** Subgroup RMS of orders 1 … 50 (index 0 = order 1); bars for orders 2 … 50 in % of order 1. */
  show(hV: readonly number[], hI: readonly number[]): void {
    const orders = Array.from({ length: hV.length - 1 }, (_, k) => k + 2);
    const share = (h: readonly number[]) => orders.map((o) => (h[0]! > 0 ? (100 * h[o - 1]!) / h[0]! : null));
    this.plot.setData([orders, share(hV), share(hI)]);
    this.el.dataset.orders = String(orders.length);
  }
}

export class TraceChart {
  readonly plot: uPlot;

  constructor(private readonly el: HTMLElement) {
    this.plot = new uPlot(
      {
        width: el.clientWidth,
        height: chartHeight(el),
        legend: { show: true, live: true },
        scales: { x: { time: false }, y: { auto: true, range: (_u, _min, max) => [0, Math.max(10, max * 1.05)] } },
        series: [
          { label: 't', value: (_u, v) => (v === null ? '—' : `${(v * 1000).toFixed(1)} ms`) },
          { label: 'Urms(1/2)', stroke: COLORS.v, width: 1.5, points: { show: false }, value: (_u, v) => (v === null ? '—' : `${v.toFixed(1)} V`) },
        ],
        axes: [
          { ...AXIS, values: (_u, s) => s.map((v) => `${+(v * 1000).toFixed(0)} ms`) },
          { ...AXIS, size: labelsWidth, values: (_u, s) => s.map((v) => `${+v.toFixed(0)} V`) },
        ],
      },
      [[], []],
      el,
    );
    follow(el, this.plot);
  }

  show(tS: readonly number[], urmsV: readonly number[]): void {
    this.plot.setData([[...tS], [...urmsV]]);
    this.el.dataset.points = String(tS.length);
  }
}
