// The dashboard reads as an instrument (issue 15, defects 1–5), in real Chromium against the whole host on the
// simulated device: history zoomed below a few minutes, the export dialog's zones, the live chart at load, hover
// values and axis labels, the energy register. Screenshots at 1440×900 and 390×844 go to test/artifacts/.

import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { launchChromium } from './browser.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveSimulated, type ServedSim } from '../../server/api/serve-in-process.ts';

const ARTIFACTS = join(import.meta.dirname, '..', 'artifacts');

let stack: ServedSim;
let context: BrowserContext;
let page: Page;
let profile: string;
const consoleErrors: string[] = [];

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  stack = await serveSimulated();
  const ingest = stack.runtime.sessions[0]!.ingest;
  await new Promise<void>((resolve) => {
    const seen = (): void => {
      if (ingest.counters.windows < 100) return; // 20 s of history before the page opens
      ingest.off('window', seen);
      resolve();
    };
    ingest.on('window', seen);
  });
  profile = mkdtempSync(join(tmpdir(), 'crabwatt-chromium-'));
  ({ context, page } = await launchChromium(profile, { viewport: { width: 1440, height: 900 }, acceptDownloads: true, timezoneId: 'America/New_York', locale: 'en-US' }));
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(e.message));
  await page.goto(stack.url);
  await page.waitForFunction(() => document.querySelector('.tile[data-q="p"] .value')?.textContent !== '—', null, { timeout: 20_000 });
});

afterAll(async () => {
  await context?.close();
  await stack?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

/** Labels, positions and sizes of a chart's axes as drawn (uPlot keeps them on each axis). */
interface AxisView {
  size: number;
  labels: string[];
  /** Centre of each label along the axis, CSS px from the plot's left (x axis). */
  at: number[];
  widths: number[];
  width: number;
}

function axes(chart: 'live' | 'history'): Promise<AxisView[]> {
  return page.evaluate((which) => {
    const u = window.crabwatt.charts[which] as unknown as {
      axes: { _size: number; _values: (string | null)[] | null; _splits: number[] | null; font: [string, number] }[];
      valToPos: (v: number, scale: string) => number;
      bbox: { left: number };
      width: number;
    };
    const ctx = document.createElement('canvas').getContext('2d')!;
    return u.axes.map((a) => {
      ctx.font = a.font[0];
      const labels = (a._values ?? []).map((v) => String(v ?? ''));
      return {
        size: a._size,
        labels,
        at: (a._splits ?? []).map((v) => u.valToPos(v, 'x') + u.bbox.left / devicePixelRatio),
        widths: labels.map((l) => Math.max(...l.split('\n').map((part) => ctx.measureText(part).width))),
        width: u.width,
      };
    });
  }, chart);
}

/** Every y label fits its axis; x labels are 24-hour times (dates ISO), inside the chart and not overlapping. */
async function checkAxes(chart: 'live' | 'history'): Promise<void> {
  const [x, ...ys] = await axes(chart);
  for (const y of ys) {
    expect(y.labels.length).toBeGreaterThan(0);
    // The label is drawn right of the axis edge, left of tick (10 px) and gap (5 px).
    for (const w of y.widths) expect(w + 15).toBeLessThanOrEqual(y.size);
  }
  expect(x!.labels.length, `${chart} x axis: ${JSON.stringify(x)}`).toBeGreaterThan(1);
  for (const l of x!.labels) expect(l).toMatch(/^(\d\d:\d\d(:\d\d(\.\d{3})?)?(\n\d{4}-\d\d-\d\d)?|\d{4}-\d\d-\d\d)$/);
  for (let k = 0; k < x!.labels.length; k++) {
    expect(x!.at[k]! - x!.widths[k]! / 2).toBeGreaterThanOrEqual(0);
    expect(x!.at[k]! + x!.widths[k]! / 2).toBeLessThanOrEqual(x!.width);
    if (k > 0) expect(x!.at[k]! - x!.at[k - 1]!).toBeGreaterThan((x!.widths[k]! + x!.widths[k - 1]!) / 2 + 4);
  }
}

describe('dashboard readings in Chromium', () => {
  it('fills the live chart from the history at load, not only with what arrived since', async () => {
    const openedAt = Date.now();
    await page.reload();
    await page.waitForFunction(() => (document.querySelector('#live-chart') as HTMLElement).dataset.filledFrom !== undefined, null, { timeout: 20_000 });
    // The server stored some 20 s of windows before the page was loaded.
    expect(Number(await page.locator('#live-chart').getAttribute('data-filled-from'))).toBeLessThan(openedAt - 10_000);
  });

  it('shows the energy tiles as a meter register in kWh with 0.1 Wh digits', async () => {
    await page.waitForFunction(() => document.querySelector('.tile[data-q="total_wh"] .value')?.textContent !== '—', null, { timeout: 20_000 });
    for (const q of ['total_wh', 'today_wh']) {
      expect(await page.locator(`.tile[data-q="${q}"] .unit`).innerText()).toBe('kWh');
      expect(await page.locator(`.tile[data-q="${q}"] .value`).innerText()).toMatch(/^\d{1,3}(,\d{3})*\.\d{4}$/);
    }
  });

  it('shows values on hover over the live chart, with labels that fit', async () => {
    const over = page.locator('#live-chart .u-over');
    const box = (await over.boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.9, box.y + box.height / 2);
    const p = page.locator('#live-chart .u-legend .u-series').nth(1).locator('.u-value');
    await expect.poll(() => p.innerText(), { timeout: 10_000 }).toMatch(/^-?\d+(\.\d+)? [kM]?W$/);
    expect(await page.locator('#live-chart .u-legend .u-series').first().locator('.u-value').innerText()).toMatch(
      /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/,
    );
    await checkAxes('live');
  });

  it('zoomed below a few minutes, shows the windows as points, not an empty shaded chart', async () => {
    await page.click('button[data-span="3600000"]');
    await page.waitForFunction(() => (document.querySelector('#history-chart') as HTMLElement).dataset.buckets !== undefined, null, { timeout: 10_000 });
    await checkAxes('history');
    const over = page.locator('#history-chart .u-over');
    const drag = async (from: number, to: number): Promise<void> => {
      const box = (await over.boundingBox())!;
      const before = await page.locator('#history-chart').getAttribute('data-from');
      await page.mouse.move(box.x + box.width * from, box.y + box.height / 2);
      await page.mouse.down();
      await page.mouse.move(box.x + box.width * to, box.y + box.height / 2, { steps: 8 });
      await page.mouse.up();
      await page.waitForFunction((b) => (document.querySelector('#history-chart') as HTMLElement).dataset.from !== b, before, { timeout: 10_000 });
    };
    // The last 3 % of the hour (about 110 s, the data is at its end), then the part of that from 85 to 97 %.
    await drag(0.97, 0.999);
    await drag(0.85, 0.97);
    const chart = page.locator('#history-chart');
    const span = Number(await chart.getAttribute('data-to')) - Number(await chart.getAttribute('data-from'));
    expect(span).toBeLessThan(30_000);
    expect(await chart.getAttribute('data-level')).toBe('raw');
    const nulls = await page.evaluate(() => {
      const u = window.crabwatt.charts.history;
      return { t: u.data[0], mean: u.data[1], from: (document.querySelector('#history-chart') as HTMLElement).dataset.from };
    });
    expect(await chart.getAttribute('data-gaps'), JSON.stringify(nulls)).toBe('0');
    expect(await page.locator('#hist-info').innerText()).toMatch(/buckets of \d+ ms from the raw level/);
    await checkAxes('history');
    await chart.screenshot({ path: join(ARTIFACTS, 'history-zoomed-raw.png') });
  });

  it('says bucket lengths as a person does', async () => {
    await page.click('button[data-span="604800000"]');
    await expect.poll(() => page.locator('#hist-info').innerText(), { timeout: 10_000 }).toMatch(/buckets of \d+ min from the 1m level/);
    await checkAxes('history');
  });

  it('exports the range on screen when another time zone is chosen', async () => {
    await page.click('button[data-span="3600000"]');
    await page.click('#export-open');
    const fromNy = await page.inputValue('#exp-from');
    expect(await page.inputValue('#exp-tz')).toBe('America/New_York');
    await page.fill('#exp-tz', 'Europe/Berlin');
    await page.locator('#exp-tz').dispatchEvent('change');
    // December: New York is UTC−5, Berlin UTC+1: the same instant reads six hours later.
    const fromBerlin = await page.inputValue('#exp-from');
    expect(Date.parse(`${fromBerlin}:00Z`) - Date.parse(`${fromNy}:00Z`)).toBe(6 * 3_600_000);
    await page.selectOption('#exp-interval', '1s');
    const [download] = await Promise.all([page.waitForEvent('download', { timeout: 20_000 }), page.click('#exp-go')]);
    const path = join(ARTIFACTS, 'export-berlin.csv');
    await download.saveAs(path);
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
    expect(lines.length).toBeGreaterThan(10);
    expect(lines[1]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+01:00,/);
    await page.click('#exp-cancel');
  });

  it('shows each view at 1440×900 and 390×844', async () => {
    await page.screenshot({ path: join(ARTIFACTS, 'readings-1440x900.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForFunction(() => (document.querySelector('#live-chart .u-over') as HTMLElement).clientWidth < 390);
    await page.click('button[data-span="3600000"]');
    await page.waitForFunction(() => (document.querySelector('#history-chart .u-over') as HTMLElement).clientWidth < 390);
    await checkAxes('live');
    await checkAxes('history');
    await page.screenshot({ path: join(ARTIFACTS, 'readings-390x844.png'), fullPage: true });
    await page.setViewportSize({ width: 1440, height: 900 });
  });

  it('ran without script errors', () => {
    expect(consoleErrors).toEqual([]);
  });
});
