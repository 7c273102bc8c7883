// Chromium for the dashboard tests: Debian's, headless, a fresh profile per test file, none of its own
// network chatter (sync, updates, QUIC), so what a test sees comes from crabwatt alone.

import { existsSync } from 'node:fs';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];

type ContextOptions = Omit<NonNullable<Parameters<typeof chromium.launchPersistentContext>[1]>, 'executablePath' | 'args'>;

/** A browser on a profile of its own, and its first page (not yet navigated). */
export async function launchChromium(profileDir: string, options: ContextOptions = {}): Promise<{ context: BrowserContext; page: Page }> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (test/setup.sh does this)`);
  const context = await chromium.launchPersistentContext(profileDir, { ...options, executablePath: CHROMIUM, args: ARGS });
  const page = context.pages()[0] ?? (await context.newPage());
  return { context, page };
}
