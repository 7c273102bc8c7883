// The waveform view: arm a capture over the span chosen, wait for its chunks, draw it with its cursors; and hand
// it to the kept captures (captures.ts), which can keep it, or draw one kept earlier instead.

import { api, type CaptureCreatedJson, type CaptureJson, type WaveformJson } from './api.ts';
import { describeCapture, parseSpan, planCapture } from './capture.ts';
import { setupKeptCaptures } from './captures.ts';
import type { WaveformChart } from './charts.ts';

export function setupWaveform(opts: {
  device: () => string | null;
  /** Mains frequency last measured, for spans in cycles (null: none yet). */
  freqHz: () => number | null;
  sampleRateHz: () => number;
  chart: WaveformChart;
  cursors: { capture(c: WaveformJson): void };
}): void {
  const button = document.querySelector<HTMLButtonElement>('#capture')!;
  const status = document.querySelector<HTMLElement>('#capture-state')!;
  const show = (c: WaveformJson, text: string) => {
    opts.chart.show(c);
    opts.cursors.capture(c);
    status.textContent = text;
  };
  const kept = setupKeptCaptures({ chart: opts.chart, show });

  button.addEventListener('click', async () => {
    const device = opts.device();
    if (!device) return;
    button.disabled = true;
    try {
      const plan = planCapture(parseSpan(document.querySelector<HTMLSelectElement>('#capture-span')!.value), opts.freqHz(), opts.sampleRateHz());
      status.textContent = `${plan.label}: armed, waiting for the trigger…`;
      const created = await api<CaptureCreatedJson>(`/api/devices/${encodeURIComponent(device)}/captures`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(plan.body),
      });
      // The device takes the span (twice, with the pretrigger refilled after a 1 s auto-trigger), then
      // sends ~16 kB of chunks.
      const waitMs = 10_000 + 1_000 + 2 * plan.spanMs;
      const deadline = Date.now() + waitMs;
      for (;;) {
        const c = await api<CaptureJson>(created.href);
        if (c.state === 'complete') {
          show(c, describeCapture(c, plan.label));
          kept.taken(device, c.id);
          break;
        }
        if (c.state === 'failed') throw new Error(c.detail);
        if (Date.now() > deadline) throw new Error(`no capture within ${Math.round(waitMs / 1000)} s (is there a signal to trigger on?)`);
        await new Promise((r) => setTimeout(r, 200));
      }
    } catch (err) {
      status.textContent = `capture failed: ${(err as Error).message}`;
    } finally {
      button.disabled = false;
    }
  });
}
