// `serve --device sim` stopped and started again on the same database: the second run is a new boot of the
// same simulated device, so its windows are stored (not booked as duplicates of the first run's), and the
// API's counters say so.

import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { getJson, scratchDir, startServe, until } from './serve-process.ts';

interface DevicesReply {
  devices: { id: string; state: string; warning: string | null; counters: { windows: number; duplicates: number } }[];
}

const WINDOWS_PER_RUN = 15;

/** Runs serve until it has received `count` window frames (stored or not); returns its device entry. */
async function runUntilWindows(db: string, count: number) {
  const serve = await startServe({ args: ['--device', 'sim', '--db', db] });
  try {
    return await until(async () => {
      const { devices } = await getJson<DevicesReply>(`${serve.url}/api/devices`);
      const d = devices.find((x) => x.state === 'connected');
      return d && d.counters.windows + d.counters.duplicates >= count ? d : undefined;
    }, 200);
  } finally {
    expect(await serve.stop()).toBe(0);
  }
}

function stored(db: string): { windows: number; devices: number; epochs: number } {
  const conn = new Database(db, { readonly: true });
  try {
    const one = (sql: string) => conn.prepare(sql).pluck().get() as number;
    return { windows: one('SELECT count(*) FROM windows'), devices: one('SELECT count(*) FROM devices'), epochs: one('SELECT count(*) FROM epochs') };
  } finally {
    conn.close();
  }
}

describe('serve --device sim, restarted on the same database', () => {
  const scratch = scratchDir('crabwatt-sim-restart-');
  afterAll(() => scratch.remove());

  it("stores the second run's windows as a new boot of the same device", async () => {
    const db = join(scratch.dir, 'crabwatt.sqlite');
    const first = await runUntilWindows(db, WINDOWS_PER_RUN);
    expect(first.counters.duplicates).toBe(0);
    const afterFirst = stored(db);
    expect(afterFirst.windows).toBeGreaterThanOrEqual(WINDOWS_PER_RUN);

    const second = await runUntilWindows(db, WINDOWS_PER_RUN);
    expect(second.id).toBe(first.id); // the same device …
    expect(second.counters.duplicates).toBe(0); // … whose new windows are not mistaken for the old ones
    expect(second.counters.windows).toBeGreaterThanOrEqual(WINDOWS_PER_RUN);
    expect(second.warning).toBeNull();
    const afterSecond = stored(db);
    expect(afterSecond.windows).toBeGreaterThanOrEqual(afterFirst.windows + WINDOWS_PER_RUN);
    expect(afterSecond.devices).toBe(1);
    expect(afterSecond.epochs).toBe(2);
  }, 120_000);
});
