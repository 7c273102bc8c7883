// The dashboard in real Chromium (Debian's, driven by playwright-core) against the whole host running the
// simulated device. Screenshots go to test/artifacts/ (git-ignored) for a human to look at.

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { launchChromium } from './browser.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CSV_HEADER } from '../../server/export/csv.ts';
import { buildApp } from '../../server/api/app.ts';
import { serveSimulated, type ServedSim } from '../../server/api/serve-in-process.ts';
import { fakes } from '../api/fakes.ts';

const ARTIFACTS = join(import.meta.dirname, '..', 'artifacts');

let stack: ServedSim;
let context: BrowserContext;
let page: Page;
let profile: string;
const historyQueries: URL[] = [];
const consoleErrors: string[] = [];

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  stack = await serveSimulated(); // `crabwatt serve --device sim`, in this process
  profile = mkdtempSync(join(tmpdir(), 'crabwatt-chromium-'));
  // A persistent context on a fresh, empty profile directory: Chromium's --user-data-dir, as playwright
  // wants it given.
  ({ context, page } = await launchChromium(profile, { viewport: { width: 1280, height: 800 }, acceptDownloads: true, timezoneId: 'Europe/Berlin' }));
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(e.message));
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.pathname === '/api/history') historyQueries.push(u);
  });
  await page.goto(stack.url);
});

afterAll(async () => {
  await context?.close();
  await stack?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

const tileText = (q: string) => page.locator(`.tile[data-q="${q}"] .value`).innerText();
const tileNumber = async (q: string) => Number((await tileText(q)).replace(/,/g, ''));
const tileUnit = (q: string) => page.locator(`.tile[data-q="${q}"] .unit`).innerText();

/** Power in W from a tile that may carry a prefix (kW, mW). */
async function watts(q: string): Promise<number> {
  const scale: Record<string, number> = { '': 1, k: 1e3, M: 1e6, m: 1e-3 };
  const unit = await tileUnit(q);
  return (await tileNumber(q)) * (scale[unit.slice(0, -(unit.endsWith('VA') ? 2 : 1))] ?? NaN);
}

describe('dashboard in Chromium on the simulated device', () => {
  it('updates the live tiles with plausible mains values', async () => {
    await page.waitForFunction(() => document.querySelector('.tile[data-q="p"] .value')?.textContent !== '—', null, { timeout: 20_000 });
    const v = await tileNumber('vrms');
    expect(v).toBeGreaterThan(215);
    expect(v).toBeLessThan(245);
    const f = await tileNumber('freq_hz');
    expect(f).toBeGreaterThan(49.5);
    expect(f).toBeLessThan(50.5);
    const p = await watts('p');
    const s = await watts('s');
    expect(p).toBeGreaterThan(0);
    expect(s).toBeGreaterThanOrEqual(p * 0.999);
    const pf = await tileNumber('pf');
    expect(pf).toBeGreaterThan(0);
    expect(pf).toBeLessThanOrEqual(1);
    // The tiles move: a later window brings other values (the load's noise alone changes the last digits).
    const first = await page.locator('.tiles').innerText();
    await page.waitForFunction((before) => document.querySelector('.tiles')!.textContent !== before, await page.locator('.tiles').textContent(), {
      timeout: 10_000,
    });
    expect(await page.locator('.tiles').innerText()).not.toBe(first);
    await page.waitForFunction(() => document.querySelector('.tile[data-q="total_wh"] .value')?.textContent !== '—', null, { timeout: 10_000 });
  });

  it('draws the live power chart and fills the device panel', async () => {
    await page.waitForFunction(() => Number((document.querySelector('#live-chart') as HTMLElement).dataset.points ?? 0) >= 5, null, { timeout: 15_000 });
    expect(await page.locator('#device-panel dd[data-k="kind"]').innerText()).toBe('simulated device');
    expect(await page.locator('#device-panel dd[data-k="state"]').innerText()).toBe('connected');
    await page.waitForFunction(() => Number(document.querySelector('#device-panel dd[data-k="fps"]')!.textContent) > 0, null, { timeout: 10_000 });
    expect(await page.locator('#device-panel dd[data-k="crc"]').innerText()).toBe('0');
    expect(await page.locator('#banner').isHidden()).toBe(true);
  });

  it('shows a captured waveform over a few mains cycles by default', async () => {
    await page.click('#capture');
    await page.waitForFunction(() => Number((document.querySelector('#wave-chart') as HTMLElement).dataset.pairs ?? 0) > 0, null, { timeout: 15_000 });
    // 4 cycles of the measured 50 Hz (or 80 ms before a frequency is known): 4096 pairs at D = 79.
    expect(await page.locator('#capture-state').innerText()).toMatch(/4096 pairs over 8\d\.\d ms \(4 cycles/);
    const wave = page.locator('#wave-chart');
    expect(Number(await wave.getAttribute('data-decimation'))).toBe(79);
    const spanMs = Number(await wave.getAttribute('data-span-ms'));
    expect(spanMs).toBeGreaterThanOrEqual(79.9);
    expect(spanMs).toBeLessThan(81);
    await wave.screenshot({ path: join(ARTIFACTS, 'waveform-4-cycles.png') });
  });

  it('captures every sample (1 ms) when asked', async () => {
    await page.selectOption('#capture-span', 'full');
    const before = await page.locator('#capture-state').innerText();
    await page.click('#capture');
    await expect.poll(() => page.locator('#capture-state').innerText(), { timeout: 15_000 }).not.toBe(before);
    await page.waitForFunction(() => (document.querySelector('#wave-chart') as HTMLElement).dataset.decimation === '1', null, { timeout: 15_000 });
    expect(await page.locator('#capture-state').innerText()).toMatch(/4096 pairs over 1\.02 ms \(full rate/);
    await page.selectOption('#capture-span', 'cycles:4');
  });

  it('re-queries the history when the user zooms in', async () => {
    await page.click('button[data-span="3600000"]');
    await page.waitForFunction(() => (document.querySelector('#history-chart') as HTMLElement).dataset.buckets !== undefined, null, { timeout: 10_000 });
    const spanOf = (q: URL): number => Number(q.searchParams.get('to')) - Number(q.searchParams.get('from'));
    const before = historyQueries.length;
    const spanBefore = spanOf(historyQueries.at(-1)!);
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-1280x800.png'), fullPage: true });
    const over = page.locator('#history-chart .u-over');
    const box = (await over.boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.6, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.8, box.y + box.height / 2, { steps: 8 });
    await page.mouse.up();
    // The page's 15 s slide of the 1 h view may query once more between `before` and the drag; that query spans
    // the whole hour. Wait for the zoom's own query: once it is sent the view no longer slides, so it stays last.
    await expect
      .poll(() => historyQueries.length > before && spanOf(historyQueries.at(-1)!) !== spanBefore, { timeout: 10_000 })
      .toBe(true);
    const q = historyQueries.at(-1)!;
    const span = spanOf(q);
    expect(span).toBeLessThan(spanBefore * 0.3);
    expect(span).toBeGreaterThan(spanBefore * 0.1);
    await page.waitForFunction((from) => (document.querySelector('#history-chart') as HTMLElement).dataset.from === from, q.searchParams.get('from'));
  });

  it('downloads an export CSV with the documented header', async () => {
    await page.click('button[data-span="3600000"]'); // the dialog starts from the chart's range: up to now
    await page.click('#export-open');
    await page.selectOption('#exp-interval', '1s');
    await page.screenshot({ path: join(ARTIFACTS, 'export-dialog.png') });
    const size = page.viewportSize()!;
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: join(ARTIFACTS, 'export-dialog-390x844.png') });
    await page.setViewportSize(size);
    const [download] = await Promise.all([page.waitForEvent('download', { timeout: 20_000 }), page.click('#exp-go')]);
    expect(download.suggestedFilename()).toMatch(/^crabwatt-[0-9a-f]{16}-.*-1s\.csv$/);
    const path = join(ARTIFACTS, 'export.csv');
    await download.saveAs(path);
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
    expect(lines[0]).toBe(CSV_HEADER);
    expect(lines.length).toBeGreaterThan(1);
    // Timestamps carry the requested zone's offset (Europe/Berlin: +01:00 or +02:00).
    expect(lines[1]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+0[12]:00,/);
    expect(await page.locator('#exp-status').innerText()).toMatch(/^saved /);
    await page.click('#exp-cancel');
  });

  it('says so when the device disconnects or sits in its bootloader', async () => {
    stack.runtime.sessions[0]!.ingest.linkEvent('reconnecting', 'serial port closed; attempt 2 in 1.0 s');
    await page.waitForFunction(() => (document.querySelector('#banner') as HTMLElement).dataset.state === 'reconnecting');
    expect(await page.locator('#banner').innerText()).toMatch(/Device disconnected, reconnecting…/);
    await page.screenshot({ path: join(ARTIFACTS, 'state-reconnecting.png') });
    stack.runtime.sessions[0]!.ingest.linkEvent('bootloader', 'found 1209:5af0 (foboot) on /dev/ttyACM0: run `crabwatt flash FILE.dfu`, or replug without holding the button');
    await page.waitForFunction(() => (document.querySelector('#banner') as HTMLElement).dataset.state === 'bootloader');
    expect(await page.locator('#banner').innerText()).toMatch(/Board in bootloader mode/);
    stack.runtime.sessions[0]!.ingest.linkEvent('connected', '');
    await page.waitForFunction(() => (document.querySelector('#banner') as HTMLElement).hidden);
  });

  it('says so plainly when the disk is full, and clears when writes get through again', async () => {
    const db = stack.runtime.store.db;
    // SQLite's SQLITE_FULL, as a full disk gives it: the file may not grow by a page.
    db.pragma(`max_page_count = ${Number(db.pragma('page_count', { simple: true }))}`);
    try {
      await page.waitForFunction(() => (document.querySelector('#banner') as HTMLElement).dataset.state === 'disk_full', null, { timeout: 60_000 });
      expect(await page.locator('#banner').innerText()).toMatch(/The disk is full: measurements are not being stored/);
      expect(await page.locator('#device-panel dd[data-k="health"]').innerText()).toBe('NOT stored: disk full');
      await page.screenshot({ path: join(ARTIFACTS, 'state-disk-full.png') });
    } finally {
      db.pragma('max_page_count = 1073741823');
    }
    await page.waitForFunction(() => (document.querySelector('#banner') as HTMLElement).hidden, null, { timeout: 60_000 });
    expect(await page.locator('#device-panel dd[data-k="health"]').innerText()).toBe('stored');
  });

  it('is usable at phone width', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(300); // let the charts follow their containers
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    const tile = (await page.locator('.tile[data-q="p"]').boundingBox())!;
    expect(tile.width).toBeGreaterThan(120);
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-phone.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it('ran without script errors or content-security-policy violations', () => {
    expect(consoleErrors).toEqual([]);
  });

  it('records the live latency (window decoded → browser message) for the figure', async () => {
    const lat = await page.evaluate(() => window.crabwatt.latenciesMs.slice());
    expect(lat.length).toBeGreaterThan(10);
    const sorted = [...lat].sort((a, b) => a - b);
    const p = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!;
    writeFileSync(join(ARTIFACTS, 'live-latency.json'), JSON.stringify({ samples: lat.length, p50_ms: p(0.5), p99_ms: p(0.99), max_ms: sorted.at(-1) }, null, 2));
  });
});

describe('dashboard on a server that needs a token', () => {
  const token = 'a-long-enough-test-token';
  let secured: ServedSim;
  beforeAll(async () => {
    secured = await serveSimulated(['--token', token]);
  });
  afterAll(async () => secured?.close());

  it('says a token is needed, and works once the address carries it', async () => {
    const p = await context.newPage();
    try {
      await p.goto(secured.url);
      await p.waitForFunction(() => (document.querySelector('#banner') as HTMLElement).dataset.state === 'token', null, { timeout: 15_000 });
      expect(await p.locator('#banner').innerText()).toMatch(/needs a token/);
      await p.goto(`${secured.url}/?token=${token}`);
      await p.waitForFunction(() => document.querySelector('.tile[data-q="p"] .value')?.textContent !== '—', null, { timeout: 20_000 });
      expect(new URL(p.url()).searchParams.has('token')).toBe(false); // not left in the address bar
      expect(await p.locator('#banner').isHidden()).toBe(true);
    } finally {
      await p.close();
    }
  });
});

describe('dashboard with no device at all', () => {
  it('says there is no device and how to get one', async () => {
    const f = fakes();
    f.devices.list = () => [];
    f.devices.get = () => undefined;
    const app = await buildApp(f);
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const p = await context.newPage();
    try {
      await p.goto(url);
      await p.waitForFunction(() => (document.querySelector('#banner') as HTMLElement).dataset.state === 'no-device', null, { timeout: 15_000 });
      expect(await p.locator('#banner').innerText()).toMatch(/No device\..*--device sim/);
      await p.screenshot({ path: join(ARTIFACTS, 'state-no-device.png') });
    } finally {
      await p.close();
      await app.close();
    }
  });
});

describe('dashboard when the device repeats windows already stored', () => {
  it('shows the duplicates in the device panel and says nothing new is stored', async () => {
    const f = fakes();
    f.devices.info = {
      ...f.devices.info,
      counters: { ...f.devices.info.counters, windows: 0, duplicates: 640 },
      warning: '64 of the last 64 windows were already stored and were not stored again',
    };
    const app = await buildApp(f);
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const p = await context.newPage();
    try {
      await p.goto(url);
      await p.waitForFunction(() => (document.querySelector('#banner') as HTMLElement).dataset.state === 'device-warning', null, { timeout: 15_000 });
      expect(await p.locator('#banner').innerText()).toMatch(/nothing new is stored.*already stored/);
      expect(await p.locator('#device-panel dd[data-k="duplicates"]').innerText()).toBe('640');
      expect(await p.locator('#device-panel dd[data-k="duplicates"]').getAttribute('class')).toBe('bad');
      expect(await p.locator('#device-panel dd[data-k="windows"]').innerText()).toBe('0');
    } finally {
      await p.close();
      await app.close();
    }
  });
});
