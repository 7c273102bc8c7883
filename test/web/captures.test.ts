// Kept captures in real Chromium against `crabwatt serve --device sim`: a capture kept under a name is listed
// (device, time, pairs, rate, span), downloads as CSV (the server's, units in the header) and as PNG (the chart),
// is renamed, survives a restart of serve, reopens into the waveform view with its cursors, and is deleted.
// Screenshots at 1440×900 and 390×844 go to test/artifacts/.

import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { launchChromium } from './browser.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveSimulated, type ServedSim } from '../../server/api/serve-in-process.ts';
import { CAPTURE_CSV_HEADER } from '../../server/export/capture-csv.ts';

const ARTIFACTS = join(import.meta.dirname, '..', 'artifacts');

let dir: string;
let db: string;
let stack: ServedSim;
let context: BrowserContext;
let page: Page;

const get = async (path: string) => (await fetch(new URL(path, stack.url))).json();
const rows = () => page.locator('#kept-list tr');
const cell = (k: number) => rows().first().locator('td').nth(k);

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  dir = mkdtempSync(join(tmpdir(), 'crabwatt-captures-'));
  db = join(dir, 'crabwatt.sqlite');
  stack = await serveSimulated(['--db', db]);
  ({ context, page } = await launchChromium(join(dir, 'profile'), { viewport: { width: 1440, height: 900 }, acceptDownloads: true, timezoneId: 'Europe/Berlin' }));
  await page.goto(stack.url);
});

afterAll(async () => {
  await context?.close();
  await stack?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('kept captures', () => {
  it('keeps the capture on screen under a name and lists it', async () => {
    await page.waitForFunction(() => (document.querySelector('#kept-status')?.textContent ?? '').includes('None kept yet'));
    expect(await page.locator('#capture-keep').isDisabled()).toBe(true);
    await page.click('#capture');
    await page.waitForFunction(() => Number((document.querySelector('#wave-chart') as HTMLElement).dataset.pairs ?? 0) > 0, null, { timeout: 15_000 });
    await page.fill('#capture-name', 'kettle switching on');
    await page.click('#capture-keep');
    await expect.poll(() => rows().count()).toBe(1);
    expect(await cell(0).innerText()).toBe('kettle switching on');
    expect(await cell(1).innerText()).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    expect(await cell(3).innerText()).toBe('4096');
    expect(await cell(4).innerText()).toMatch(/kS\/s$/);
    expect(await page.locator('#kept-status').innerText()).toBe('kept as “kettle switching on”');
    // Kept once: the button waits for the next capture.
    expect(await page.locator('#capture-keep').isDisabled()).toBe(true);
    const list = await get('/api/captures');
    expect(list.captures).toHaveLength(1);
    expect(list.captures[0]).toMatchObject({ name: 'kettle switching on', pairs: 4096 });
  });

  it('downloads it as CSV with units (the server\'s) and the chart as PNG', async () => {
    const [csv] = await Promise.all([page.waitForEvent('download'), rows().first().locator('button[data-action="csv"]').click()]);
    const { captures: [info] } = await get('/api/captures');
    expect(csv.suggestedFilename()).toBe(`${info.file_stem}.csv`);
    const text = readFileSync((await csv.path())!, 'utf8');
    expect(text.split('\n')[0]).toBe(CAPTURE_CSV_HEADER);
    expect(text).toBe(await (await fetch(new URL(`${info.href}/csv`, stack.url))).text());
    expect(text.trimEnd().split('\n')).toHaveLength(4097);

    const [png] = await Promise.all([page.waitForEvent('download'), page.click('#capture-png')]);
    expect(png.suggestedFilename()).toBe(`${info.file_stem}.png`);
    const bytes = readFileSync((await png.path())!);
    expect(bytes.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    const chart = await page.locator('#wave-chart canvas').first().boundingBox();
    // IHDR: the chart's width, its height plus the title lines.
    expect(bytes.readUInt32BE(16)).toBe(Math.round(chart!.width));
    expect(bytes.readUInt32BE(20)).toBeGreaterThan(Math.round(chart!.height));
  });

  it('renames it', async () => {
    await rows().first().locator('button[data-action="rename"]').click();
    await page.fill('#kept-list input.kept-rename', 'kettle, 2 kW');
    await page.press('#kept-list input.kept-rename', 'Enter');
    await expect.poll(() => cell(0).innerText()).toBe('kettle, 2 kW');
    expect((await get('/api/captures')).captures[0].name).toBe('kettle, 2 kW');
  });

  it('is still there after serve restarts, and reopens into the waveform view with its cursors', async () => {
    const { captures: [info] } = await get('/api/captures');
    const kept = await get(info.href);
    await stack.close();
    stack = await serveSimulated(['--db', db]);
    await page.goto(stack.url);
    await expect.poll(() => rows().count()).toBe(1);
    expect(await cell(0).innerText()).toBe('kettle, 2 kW');
    expect(await page.locator('#wave-chart').getAttribute('data-pairs')).toBeNull();
    await rows().first().locator('button[data-action="open"]').click();
    await page.waitForFunction(() => (document.querySelector('#wave-chart') as HTMLElement).dataset.pairs === '4096');
    expect(await page.locator('#capture-state').innerText()).toMatch(/^kept “kettle, 2 kW”: capture \d+: 4096 pairs over/);
    // The chart spans the stored pairs: (pairs − 1)·D / fs.
    const wave = page.locator('#wave-chart');
    expect(Number(await wave.getAttribute('data-decimation'))).toBe(kept.decimation);
    expect(Number(await wave.getAttribute('data-span-ms'))).toBeCloseTo(((kept.pairs - 1) * kept.decimation * 1000) / kept.sample_rate_hz, 6);
    await page.click('#wave-cursors');
    await page.waitForFunction(() => !(document.querySelector('#wave-cursor-readout') as HTMLElement).hidden);
    expect(await page.locator('#wave-cursor-readout').innerText()).toMatch(/Energy/);
    expect(await page.locator('#capture-png').isDisabled()).toBe(false);
    await page.locator('#wave-chart').scrollIntoViewIfNeeded();
    await page.locator('#wave-chart').locator('xpath=ancestor::article').screenshot({ path: join(ARTIFACTS, 'captures-1440x900.png') });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.locator('#wave-chart').locator('xpath=ancestor::article').screenshot({ path: join(ARTIFACTS, 'captures-390x844.png') });
    await page.setViewportSize({ width: 1440, height: 900 });
  });

  it('deletes it after a second tap', async () => {
    const del = rows().first().locator('button[data-action="delete"]');
    await del.click();
    expect(await del.innerText()).toBe('Delete?');
    expect((await get('/api/captures')).captures).toHaveLength(1);
    await del.click();
    await expect.poll(() => rows().count()).toBe(0);
    expect((await get('/api/captures')).captures).toEqual([]);
    expect(await page.locator('#kept-status').innerText()).toBe('deleted “kettle, 2 kW”');
    // What the waveform shows was the deleted one: nothing left to export.
    expect(await page.locator('#capture-png').isDisabled()).toBe(true);
  });
});
