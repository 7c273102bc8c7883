// Two cursors on a uPlot chart (the history and the waveform), as on an instrument: drag either with a mouse
// or a finger (a 28 px wide grip around a 2 px line), or focus it (Tab) and move it with the arrow keys (1 %
// of the view; Shift: 10 %; Home/End). Between them the owner shows what it measures (onChange).

import type uPlot from 'uplot';

export class Cursors {
  /** Cursor positions in the chart's x units (history: Unix s; waveform: ms from the trigger). */
  readonly x: [number, number] = [0, 0];
  private readonly grips: HTMLElement[];
  private on = false;

  constructor(
    private readonly plot: () => uPlot,
    private readonly onChange: (a: number, b: number) => void,
    names: [string, string] = ['cursor A', 'cursor B'],
  ) {
    this.grips = names.map((name, k) => this.grip(name, k));
  }

  get enabled(): boolean {
    return this.on;
  }

  /** Shows them at a third and two thirds of the visible range, or hides them. */
  toggle(on = !this.on): void {
    this.on = on;
    if (on) {
      const { min, max } = this.range();
      this.x[0] = min + (max - min) / 3;
      this.x[1] = min + (2 * (max - min)) / 3;
    }
    this.place();
    if (on) this.changed();
  }

  /** New data or a new range: cursors still inside it stay on their values, others go back to the thirds. */
  refresh(): void {
    if (!this.on) return;
    const { min, max } = this.range();
    if (this.x.some((x) => x < min || x > max)) {
      this.toggle(true);
      return;
    }
    this.place();
    this.changed();
  }

  /** Puts the grips where their values are now drawn (after new data, a zoom or a resize). */
  place(): void {
    const u = this.plot();
    this.grips.forEach((g, k) => {
      if (g.parentElement !== u.over) u.over.append(g);
      g.hidden = !this.on;
      const pos = u.valToPos(this.x[k]!, 'x');
      g.style.left = `${pos}px`;
      g.setAttribute('aria-valuenow', String(this.x[k]));
      g.setAttribute('aria-valuetext', String(this.x[k]));
    });
  }

  private range(): { min: number; max: number } {
    const s = this.plot().scales.x!;
    return { min: s.min ?? 0, max: s.max ?? 1 };
  }

  private changed(): void {
    this.onChange(Math.min(...this.x), Math.max(...this.x));
  }

  private move(k: number, value: number): void {
    const { min, max } = this.range();
    this.x[k] = Math.max(min, Math.min(max, value));
    this.place();
    this.changed();
  }

  private grip(name: string, k: number): HTMLElement {
    const g = document.createElement('div');
    g.className = 'cursor-grip';
    g.dataset.cursor = String(k);
    g.tabIndex = 0;
    g.hidden = true;
    g.setAttribute('role', 'slider');
    g.setAttribute('aria-label', name);
    g.append(Object.assign(document.createElement('span'), { className: 'cursor-tag', textContent: 'AB'[k]! }));
    // uPlot zooms on a drag that starts on its overlay: a drag of a grip must stay the grip's.
    for (const type of ['mousedown', 'touchstart'] as const) g.addEventListener(type, (e) => e.stopPropagation(), { passive: true });
    g.addEventListener('pointerdown', (e) => {
      e.stopPropagation();
      g.setPointerCapture(e.pointerId);
      g.focus();
    });
    g.addEventListener('pointermove', (e) => {
      if (!g.hasPointerCapture(e.pointerId)) return;
      const u = this.plot();
      this.move(k, u.posToVal(e.clientX - u.over.getBoundingClientRect().left, 'x'));
    });
    g.addEventListener('keydown', (e) => {
      const { min, max } = this.range();
      const step = ((max - min) / 100) * (e.shiftKey ? 10 : 1);
      const to: Record<string, number> = { ArrowLeft: this.x[k]! - step, ArrowRight: this.x[k]! + step, Home: min, End: max };
      if (!(e.key in to)) return;
      e.preventDefault();
      this.move(k, to[e.key]!);
    });
    return g;
  }
}
