// The energy view and the cursors in real Chromium against `crabwatt serve --device sim` on a database that
// already holds two days of the same device: yesterday's hourly bars must equal the ledger to the nWh, a run of
// bars selected with the keyboard must sum exactly, the tariff set in the dialog must price them (a bad one is
// refused with the server's reason), and the energy between the history cursors must be the ledger's. One
// browser and one server for all (they cost most of the time). Screenshots at 1440×900 and 390×844 go to
// test/artifacts/.

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { launchChromium } from './browser.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveSimulated, type ServedSim } from '../../server/api/serve-in-process.ts';
import { SimulatedDevice } from '../../server/sim/device.ts';
import { SAMPLE_RATE_HZ } from '../../server/sim/load.ts';
import { Store } from '../../server/store/store.ts';
import { derivedFor, makeWindow } from '../store/helpers.ts';

const ARTIFACTS = join(import.meta.dirname, '..', 'artifacts');
const WINDOW_SAMPLES = 2 ** 24; // 4.19 s at 4 MS/s, the longest window a device sends

let dir: string;
let stack: ServedSim;
let context: BrowserContext;
let page: Page;
let device: string;

/** Two days of windows ending 10 min ago, power stepping with the hour, from the device the simulator is. */
function seed(dbPath: string): string {
  const sim = new SimulatedDevice();
  const store = Store.open(dbPath);
  const start = Date.now() - 50 * 3_600_000;
  const ref = store.attachDevice(
    { deviceId: sim.deviceId, bootId: 1, fsNum: SAMPLE_RATE_HZ, fsDen: 1, defaultKv: sim.kv, defaultKi: sim.ki },
    start,
  );
  const count = Math.floor((50 * 3_600_000 - 600_000) / ((WINDOW_SAMPLES / SAMPLE_RATE_HZ) * 1000));
  for (let k = 1; k <= count; k++) {
    const end = BigInt(k) * BigInt(WINDOW_SAMPLES);
    const now = start + (Number(end) / SAMPLE_RATE_HZ) * 1000;
    const watts = 300 + 40 * (Math.floor(now / 3_600_000) % 24) + (k % 7);
    const sumVi = BigInt(Math.round((watts * WINDOW_SAMPLES) / (sim.kv * sim.ki)));
    store.addWindow(ref, makeWindow(end, WINDOW_SAMPLES, sumVi), derivedFor(watts), now);
  }
  store.close();
  return ref.hex;
}

/** nWh the ledger booked in [a, b): windows whose last millisecond falls in it. */
function ledger(a: number, b: number): bigint {
  const db = stack.runtime.store.db;
  return BigInt(
    (db.prepare('SELECT sum(energy_nwh) FROM windows WHERE t_end_ms - 1 >= ? AND t_end_ms - 1 < ?').pluck().safeIntegers(true).get(a, b) as bigint | null) ?? 0n,
  );
}

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  dir = mkdtempSync(join(tmpdir(), 'crabwatt-energy-'));
  const db = join(dir, 'seeded.sqlite');
  device = seed(db);
  stack = await serveSimulated(['--db', db]);
  ({ context, page } = await launchChromium(join(dir, 'profile'), { viewport: { width: 1440, height: 900 }, timezoneId: 'Europe/Berlin' }));
  await page.goto(stack.url);
});

afterAll(async () => {
  await context?.close();
  await stack?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const bars = () =>
  page.$$eval('#energy-bars .ebar', (els) => els.map((e) => ({ nwh: (e as HTMLElement).dataset.nwh!, start: Number((e as HTMLElement).dataset.start), end: Number((e as HTMLElement).dataset.end) })));

describe('energy view in Chromium', () => {
  it("shows yesterday's 24 hourly bars, each equal to the ledger to the nWh", async () => {
    expect(stack.runtime.sessions[0]!.ingest).toBeDefined();
    await page.waitForFunction(() => Number(document.querySelector<HTMLElement>('#energy-bars')?.dataset.periods ?? 0) > 0, null, { timeout: 20_000 });
    const today = await page.locator('#energy-title').innerText();
    await page.click('#energy-prev');
    await expect.poll(() => page.locator('#energy-title').innerText(), { timeout: 10_000 }).not.toBe(today);
    const b = await bars();
    expect(b.length).toBe(24);
    let sum = 0n;
    for (const bar of b) {
      expect(BigInt(bar.nwh), new Date(bar.start).toISOString()).toBe(ledger(bar.start, bar.end));
      sum += BigInt(bar.nwh);
    }
    expect(sum).toBeGreaterThan(0n);
    expect(BigInt((await page.locator('#energy-summary').getAttribute('data-nwh'))!)).toBe(sum);
    expect(await page.locator('#energy-summary').innerText()).toMatch(/^This day: [\d.]+ kWh — the day before: [\d.]+ kWh.*set a tariff to see costs$/);
  });

  it('sums a run of bars selected with the keyboard exactly', async () => {
    const b = await bars();
    await page.focus('#energy-bars .ebar[data-k="0"]');
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowRight');
    for (let k = 0; k < 5; k++) await page.keyboard.press('Shift+ArrowRight');
    const picked = b.slice(2, 8);
    expect(await page.locator('#energy-bars .ebar[aria-pressed="true"]').count()).toBe(6);
    expect(BigInt((await page.locator('#energy-selection').getAttribute('data-nwh'))!)).toBe(ledger(picked[0]!.start, picked.at(-1)!.end));
  });

  it('refuses a tariff with a hole, then prices the day with a two-band one', async () => {
    await page.click('#tariff-open');
    await page.waitForSelector('#tariff-dialog[open]');
    const row = (k: number) => page.locator('#tariff-bands tr').nth(k);
    await row(0).locator('.b-name').fill('day');
    await row(0).locator('.b-from').fill('07:00');
    await row(0).locator('.b-to').fill('23:00');
    await row(0).locator('.b-price').fill('0.40');
    await page.fill('#tariff-standing', '0.5');
    await page.click('#tariff-save');
    await expect.poll(() => page.locator('#tariff-status').innerText()).toMatch(/^not saved: on Monday no band applies at 00:00/);
    await page.click('#tariff-add');
    await row(1).locator('.b-name').fill('night');
    await row(1).locator('.b-from').fill('23:00');
    await row(1).locator('.b-to').fill('07:00');
    await row(1).locator('.b-price').fill('0.20');
    await page.screenshot({ path: join(ARTIFACTS, 'tariff-dialog-1440x900.png') });
    const size = page.viewportSize()!;
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: join(ARTIFACTS, 'tariff-dialog-390x844.png') });
    await page.setViewportSize(size);
    await page.click('#tariff-save');
    await page.waitForSelector('#tariff-dialog:not([open])', { state: 'attached' });
    await expect.poll(() => page.locator('#energy-summary').innerText(), { timeout: 10_000 }).toMatch(/€/);
    // The day's cost: night hours at 0.20, day hours at 0.40 per kWh, plus the standing charge.
    const b = await bars();
    const expected = b.reduce((s, bar) => {
      const hour = new Date(bar.start).toLocaleString('en-GB', { timeZone: 'Europe/Berlin', hour: '2-digit', hourCycle: 'h23' });
      return s + (Number(bar.nwh) / 1e12) * (Number(hour) >= 7 && Number(hour) < 23 ? 0.4 : 0.2);
    }, 0.5);
    const text = await page.locator('#energy-summary').innerText();
    const shown = Number(/kWh · €([\d.,]+) —/.exec(text)![1]!.replace(/,/g, ''));
    expect(shown).toBeCloseTo(expected, 2);
  });

  it('fits a phone and a desktop (screenshots)', async () => {
    await page.locator('#energy-card').screenshot({ path: join(ARTIFACTS, 'energy-1440x900.png') });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.locator('#energy-card').scrollIntoViewIfNeeded();
    const overflow = await page.$eval('#energy-bars', (el) => el.scrollWidth - el.clientWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await page.locator('#energy-card').screenshot({ path: join(ARTIFACTS, 'energy-390x844.png') });
    await page.setViewportSize({ width: 1440, height: 900 });
  });
});

describe('cursors in Chromium', () => {
  const readout = (sel: string, key: string) => page.locator(sel).getAttribute(`data-${key}`);

  it('measures between two cursors on the history, the energy exact from the ledger, moved by keyboard and by drag', async () => {
    await page.click('button[data-span="86400000"]');
    await page.waitForFunction(() => Number((document.querySelector('#history-chart') as HTMLElement).dataset.buckets ?? 0) > 0, null, { timeout: 15_000 });
    await page.click('#hist-cursors');
    await expect.poll(() => readout('#hist-cursor-readout .energy', 'nwh'), { timeout: 10_000 }).not.toBeNull();
    // A third of 24 h between them.
    expect(Number(await readout('#hist-cursor-readout', 'dt-ms'))).toBeCloseTo(8 * 3_600_000, -4);
    const check = async () => {
      // One read of the three: the 24 h view slides every 15 s and the cursors re-measure then.
      const e = await page.$eval('#hist-cursor-readout .energy', (el) => ({ ...(el as HTMLElement).dataset }));
      const from = Number(e['from']);
      const to = Number(e['to']);
      expect(from % 1000).toBe(0);
      expect(BigInt(e['nwh']!)).toBe(ledger(from, to));
      return { from, to };
    };
    const first = await check();
    expect(await page.locator('#hist-cursor-readout .cursor-table').innerText()).toMatch(/\nP\t[\d.]+ k?W\t/);
    // Keyboard: cursor B a tenth of the view (2.4 h) back.
    await page.focus('#history-chart .cursor-grip[data-cursor="1"]');
    await page.keyboard.press('Shift+ArrowLeft');
    await expect.poll(() => readout('#hist-cursor-readout', 'dt-ms')).not.toBe(String(8 * 3_600_000));
    expect(Number(await readout('#hist-cursor-readout', 'dt-ms'))).toBeCloseTo(5.6 * 3_600_000, -4);
    await expect.poll(async () => Number(await readout('#hist-cursor-readout .energy', 'to')), { timeout: 10_000 }).toBeLessThan(first.to);
    await check();
    // Mouse (as a finger would): drag cursor A right; the chart must not zoom (the 24 h view only slides on).
    const spanMs = async () => {
      const [f, t] = await Promise.all(['data-from', 'data-to'].map((a) => page.locator('#history-chart').getAttribute(a)));
      return Number(t) - Number(f);
    };
    const before = await spanMs();
    const grip = (await page.locator('#history-chart .cursor-grip[data-cursor="0"]').boundingBox())!;
    await page.mouse.move(grip.x + grip.width / 2, grip.y + grip.height / 2);
    await page.mouse.down();
    await page.mouse.move(grip.x + grip.width / 2 + 120, grip.y + grip.height / 2, { steps: 6 });
    await page.mouse.up();
    await expect.poll(async () => Number(await readout('#hist-cursor-readout', 'dt-ms'))).toBeLessThan(5.5 * 3_600_000);
    expect(await spanMs()).toBe(before);
    await expect.poll(async () => Number(await readout('#hist-cursor-readout .energy', 'from')), { timeout: 10_000 }).toBeGreaterThan(first.from);
    await check();
    await page.locator('#history-chart').screenshot({ path: join(ARTIFACTS, 'history-cursors-1440x900.png') });
  });

  it('measures between two cursors on a capture: V and I RMS of the mains, energy = mean P × Δt', async () => {
    await page.click('#capture');
    await page.waitForFunction(() => Number((document.querySelector('#wave-chart') as HTMLElement).dataset.pairs ?? 0) > 0, null, { timeout: 20_000 });
    await page.click('#wave-cursors');
    const text = await page.locator('#wave-cursor-readout').innerText();
    const vrms = Number(/\nV\t.*\t([\d.]+) V\s*(\n|$)/.exec(text)?.[1]);
    expect(vrms).toBeGreaterThan(200);
    expect(vrms).toBeLessThan(260);
    const pMean = await page.$eval('#wave-cursor-readout .cursor-table tr:last-child td', (td) => td.textContent!);
    const watts = Number(pMean.split(' ')[0]) * (pMean.includes(' kW') ? 1000 : 1);
    const dtMs = Number(await readout('#wave-cursor-readout', 'dt-ms'));
    const wh = Number(await readout('#wave-cursor-readout', 'wh'));
    expect(wh).toBeCloseTo((watts * dtMs) / 3.6e6, 4);
    await page.locator('#wave-chart').screenshot({ path: join(ARTIFACTS, 'waveform-cursors-1440x900.png') });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.locator('#wave-cursor-readout').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(ARTIFACTS, 'cursors-390x844.png') });
    await page.setViewportSize({ width: 1440, height: 900 });
  });
});

describe('event log in Chromium', () => {
  const kinds = () => page.$$eval('#event-list .event', (els) => els.map((e) => (e as HTMLElement).dataset.kind!));

  it('lists the restart, the device reset and the stretch without data, and opens the history at one', async () => {
    await expect.poll(kinds, { timeout: 20_000 }).toEqual(expect.arrayContaining(['serve_start', 'link_connected', 'device_reset', 'no_data', 'device_first_seen']));
    const hole = page.locator('#event-list .event[data-kind="no_data"]').first();
    expect(await hole.innerText()).toMatch(/No data[\s\S]*no measurements for \d+ min/);
    await hole.click();
    // The stretch runs from the seeded data's end to the simulator's start: the history opens around it.
    await page.waitForFunction(() => {
      const from = Number((document.querySelector('#history-chart') as HTMLElement).dataset.from);
      return from > Date.now() - 3_600_000 && from < Date.now() - 600_000;
    }, null, { timeout: 10_000 });
    await page.screenshot({ path: join(ARTIFACTS, 'events-history-1440x900.png') });
  });

  it('logs a disk-full period once writes get through again', async () => {
    const db = stack.runtime.store.db;
    // The seeded file has free pages (packing deleted rows): fill them, or writes would go on without growing it.
    const free = Number(db.pragma('freelist_count', { simple: true })) * Number(db.pragma('page_size', { simple: true }));
    db.exec(`CREATE TABLE filler (x); INSERT INTO filler VALUES (zeroblob(${free}))`);
    db.pragma(`max_page_count = ${Number(db.pragma('page_count', { simple: true }))}`);
    try {
      await page.waitForFunction(() => (document.querySelector('#banner') as HTMLElement).dataset.state === 'disk_full', null, { timeout: 60_000 });
    } finally {
      db.pragma('max_page_count = 1073741823');
      db.exec('DROP TABLE filler');
    }
    await page.waitForFunction(() => (document.querySelector('#banner') as HTMLElement).hidden, null, { timeout: 60_000 });
    await expect
      .poll(async () => {
        await page.selectOption('#event-span', '86400000'); // a change of span reloads the list
        await page.selectOption('#event-span', '604800000');
        return kinds();
      }, { timeout: 20_000, interval: 1000 })
      .toContain('disk_full');
    expect(await page.locator('#event-list .event[data-kind="disk_full"]').innerText()).toMatch(/Disk full: not stored/);
    await page.locator('#event-card').screenshot({ path: join(ARTIFACTS, 'events-1440x900.png') });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.locator('#event-card').screenshot({ path: join(ARTIFACTS, 'events-390x844.png') });
    await page.setViewportSize({ width: 1440, height: 900 });
  });
});
