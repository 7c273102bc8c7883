// The power-quality view in real Chromium against `crabwatt serve --device sim` on a database that already
// holds a week of the device's 10-minute aggregates and three voltage events (written by the store's own
// PqRows, as serve writes them): the spectrum shows the last interval in % of the fundamental, the EN 50160
// summary counts the week's values within each limit, and an event opens its Urms(1/2) trace. Screenshots at
// 1440×900 and 390×844 go to test/artifacts/.

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { launchChromium } from './browser.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveSimulated, type ServedSim } from '../../server/api/serve-in-process.ts';
import type { PqAggregate } from '../../server/pq/aggregate.ts';
import type { TracedEvent } from '../../server/pq/live.ts';
import { SimulatedDevice } from '../../server/sim/device.ts';
import { SAMPLE_RATE_HZ } from '../../server/sim/load.ts';
import { Store } from '../../server/store/store.ts';

const ARTIFACTS = join(import.meta.dirname, '..', 'artifacts');
const INTERVALS = 1000;
/** Intervals whose 5th harmonic (7 % of the fundamental) is above EN 50160's 6 %: every 20th. */
const H5_HIGH_EVERY = 20;

let dir: string;
let stack: ServedSim;
let context: BrowserContext;
let page: Page;

/** A week of 10-minute aggregates ending 10 min ago and three events, for the device the simulator is. */
function seed(dbPath: string): void {
  const sim = new SimulatedDevice();
  const store = Store.open(dbPath);
  const start = Date.now() - (INTERVALS + 1) * 600_000;
  const ref = store.attachDevice({ deviceId: sim.deviceId, bootId: 1, fsNum: SAMPLE_RATE_HZ, fsDen: 1, defaultKv: sim.kv, defaultKi: sim.ki }, start);
  const epoch = store.db.prepare('SELECT max(id) FROM epochs').pluck().get() as number;
  const clock = { device: ref.hex, epoch, endIndex: 0n, tMs: start, msPerSample: 1000 / SAMPLE_RATE_HZ };
  const at = (ms: number) => ms * (SAMPLE_RATE_HZ / 1000);
  const aggregates: PqAggregate[] = [];
  for (let k = 0; k < INTERVALS; k++) {
    const h_v = Array.from({ length: 50 }, (_, o) => (o === 0 ? 230 : o === 4 ? (k % H5_HIGH_EVERY === 0 ? 16.1 : 6.9) : o === 2 ? 4.6 : o % 2 === 0 ? 0.5 : 0.1));
    const h_i = Array.from({ length: 50 }, (_, o) => (o === 0 ? 5 : o % 2 === 0 ? 5 / (o + 1) : 0.01));
    aggregates.push({
      kind: '10min', start: at(k * 600_000), end: at((k + 1) * 600_000), windows: 3000, vrms: 230 + (k % 7), irms: 5.5,
      h_v, h_i, p_h: h_v.map((v, o) => v * h_i[o]!), thd_v: k % H5_HIGH_EVERY === 0 ? 0.0712 : 0.0361, thd_i: 0.42, flagged: k === INTERVALS - 2,
    });
  }
  const trace = (depthV: number): number[] => Array.from({ length: 60 }, (_, j) => [(j - 10) * 0.01, j >= 10 && j < 40 ? depthV : 229.5]).flat();
  const events: TracedEvent[] = [
    { kind: 'dip', start: at((INTERVALS - 2) * 600_000 + 5000), end: at((INTERVALS - 2) * 600_000 + 5300), extremeV: 126.5, cutByGap: false, trace: trace(126.5) },
    { kind: 'interruption', start: at((INTERVALS - 3) * 600_000), end: at((INTERVALS - 3) * 600_000 + 120), extremeV: 1.2, cutByGap: false, trace: trace(1.2) },
    { kind: 'swell', start: at(300 * 600_000), end: at(300 * 600_000 + 60), extremeV: 262.4, cutByGap: false, trace: trace(262.4) },
  ];
  store.pqRows!.add({ clock, aggregates, events });
  store.close();
}

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  dir = mkdtempSync(join(tmpdir(), 'crabwatt-pq-'));
  const db = join(dir, 'seeded.sqlite');
  seed(db);
  stack = await serveSimulated(['--db', db]);
  ({ context, page } = await launchChromium(join(dir, 'profile'), { viewport: { width: 1440, height: 900 } }));
  await page.goto(stack.url);
});

afterAll(async () => {
  await context?.close();
  await stack?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('power-quality view', () => {
  it('shows the last interval\'s spectrum with THD and the week\'s EN 50160 shares', async () => {
    await page.waitForFunction(() => Number(document.querySelector<HTMLElement>('#pq-summary')?.dataset.values ?? 0) > 0, null, { timeout: 20_000 });
    expect(await page.locator('#pq-summary').getAttribute('data-values')).toBe(String(INTERVALS));
    expect(await page.locator('#pq-spectrum').getAttribute('data-orders')).toBe('49');
    expect(await page.locator('#pq-thd').innerText()).toMatch(/^THD V 3\.61 % · THD I 42\.00 % · 23\d\.\d V 5\.50 A/);
    const row = async (label: RegExp) => {
      const tr = page.locator('#pq-summary tbody tr', { hasText: label }).first();
      return { cells: await tr.locator('td').allInnerTexts(), passes: await tr.getAttribute('data-passes') };
    };
    // All within ±10 % of 230 V; every 20th interval's THD and 5th harmonic are over their limits (95.0 % still meets).
    expect(await row(/^Voltage within/)).toEqual({ cells: ['Voltage within ±10 % of 230 V', '100.0 %', 'yes'], passes: 'true' });
    expect(await row(/^THD/)).toEqual({ cells: ['THD ≤ 8 %', '100.0 %', 'yes'], passes: 'true' });
    expect(await row(/^H5 /)).toEqual({ cells: ['H5 ≤ 6 %', '95.0 %', 'yes'], passes: 'true' });
    // The 3rd (2 %) is within its 5 %; the 2nd at 0.5/230 as well; no even order above 0.5 % fails.
    expect((await row(/^H3 /)).cells[1]).toBe('100.0 %');
  });

  it('lists the events newest first and opens one\'s Urms(1/2) trace', async () => {
    await page.waitForFunction(() => document.querySelector<HTMLElement>('#pq-event-list')?.dataset.count === '3');
    expect(await page.locator('#pq-event-list .event strong').allInnerTexts()).toEqual(['Dip', 'Interruption', 'Swell']);
    await page.locator('#pq-event-list .event').first().click();
    await page.waitForFunction(() => document.querySelector<HTMLElement>('#pq-trace')?.dataset.points === '60');
    expect(await page.locator('#pq-trace-title').innerText()).toMatch(/^Dip at .*: 300 ms, residual 126\.5 V$/);
    await page.locator('#pq-card').screenshot({ path: join(ARTIFACTS, 'pq-1440x900.png') });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.locator('#pq-card').scrollIntoViewIfNeeded();
    await page.locator('#pq-card').screenshot({ path: join(ARTIFACTS, 'pq-390x844.png') });
  });
});
