// The dashboard's device picker against a serve with two simulated devices (Debian's Chromium through
// playwright-core): both are offered, the "all devices" tile shows their summed energy, and choosing the
// other device moves the live tiles and the device panel to it.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { launchChromium } from './browser.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveInProcess, type ServedSim } from '../../server/api/serve-in-process.ts';


let stack: ServedSim;
let context: BrowserContext;
let page: Page;
let profile: string;

beforeAll(async () => {
  stack = await serveInProcess('sim:mains-230-50', ['--device', 'sim:mains-120-60', '--speed', '5']);
  profile = mkdtempSync(join(tmpdir(), 'crabwatt-chromium-'));
  ({ context, page } = await launchChromium(profile));
  await page.goto(stack.url);
});

afterAll(async () => {
  await context?.close();
  await stack?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

describe('the device picker with two devices in one serve', () => {
  it('offers both and shows the energy of all of them', async () => {
    await page.waitForFunction(() => document.querySelectorAll('#device-select option').length === 2, null, { timeout: 20_000 });
    await page.waitForFunction(() => document.querySelector('.tile[data-q="all_total_wh"] .value')?.textContent !== '—', null, { timeout: 20_000 });
    expect(await page.locator('.tile[data-q="all_total_wh"]').isVisible()).toBe(true);
    expect(await page.locator('.tile[data-q="all_total_wh"]').getAttribute('title')).toMatch(/^2 devices: \d+ nWh in total/);
  });

  it('moves the live tiles to the device chosen, and remembers the choice', async () => {
    const ids = stack.runtime.sessions.map((s) => s.ingest.deviceId!);
    const us = ids[1]!; // the 120 V / 60 Hz one
    await page.selectOption('#device-select', us);
    await page.waitForFunction(() => {
      const f = Number(document.querySelector('.tile[data-q="freq_hz"] .value')?.textContent);
      return f > 59 && f < 61;
    }, null, { timeout: 20_000 });
    const v = Number(await page.locator('.tile[data-q="vrms"] .value').innerText());
    expect(v).toBeGreaterThan(100);
    expect(v).toBeLessThan(140);
    expect(await page.evaluate(() => localStorage.getItem('crabwatt.device'))).toBe(us);
  });
});
