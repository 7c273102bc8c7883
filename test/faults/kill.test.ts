// kill -9 of a running serve, several times at different moments (right after it listens, a few windows in,
// many windows in), each time restarted on the same database: the database stays intact, the energy counter
// equals the energy of the stored windows and gaps (and of every rollup level), every window the API had
// served as stored is still there, and ingest goes on.

import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { levelSums } from '../store/helpers.ts';
import { getJson, scratchDir, startServe, until, type ServeProcess } from './serve-process.ts';

interface DevicesJson {
  devices: { id: string; state: string }[];
}

/** The raw windows the API serves as stored, one CSV line each (the whole line: time, values, energy). */
async function storedWindows(url: string, device: string): Promise<Set<string>> {
  const now = Date.now();
  const q = new URLSearchParams({ device, from: String(now - 3_600_000), to: String(now + 3_600_000), interval: 'raw', tz: 'UTC' });
  const res = await fetch(`${url}/api/export.csv?${q}`);
  expect(res.status).toBe(200);
  return new Set((await res.text()).trim().split('\n').slice(1));
}

/** `served`: windows the API had served as stored, so the counter must hold their (positive) energy. */
function checkDatabase(path: string, served: number): void {
  const db = new Database(path, { readonly: true });
  try {
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    const one = (sql: string): bigint => BigInt((db.prepare(sql).pluck().safeIntegers(true).get() as bigint | null) ?? 0n);
    const total = one('SELECT sum(total_nwh) FROM devices');
    const booked = one('SELECT sum(energy_nwh) FROM windows') + one('SELECT sum(energy_gaps.energy_nwh) FROM energy_gaps');
    expect(total).toBe(booked);
    if (served > 0) expect(total).toBeGreaterThan(0n);
    for (const ms of [1000, 60_000, 900_000, 3_600_000, 86_400_000]) expect(levelSums(db, ms).energyNwh).toBe(total);
  } finally {
    db.close();
  }
}

describe('kill -9 during ingest', () => {
  let scratch: ReturnType<typeof scratchDir>;
  let serve: ServeProcess | undefined;
  beforeEach(() => (scratch = scratchDir()));
  afterEach(async () => {
    if (serve) await serve.kill9();
    scratch.remove();
  });

  it('loses nothing acknowledged, books nothing twice, and goes on after each restart', { timeout: 600_000 }, async () => {
    const db = join(scratch.dir, 'k.sqlite');
    const args = ['--device', 'sim', '--db', db, '--speed', '4'];
    let acknowledged = new Set<string>();
    // Windows to see before each kill: 0 is right after the listen line, in the middle of the first flushes.
    for (const windowsBeforeKill of [0, 5, 60, 1]) {
      serve = await startServe({ args });
      const url = serve.url;
      const device = await until(async () => (await getJson<DevicesJson>(`${url}/api/devices`)).devices.find((d) => d.id !== '')?.id);
      // Ingest goes on: windows beyond the ones stored before this start appear.
      const seen = await until(async () => {
        const now = await storedWindows(url, device);
        return now.size >= acknowledged.size + windowsBeforeKill ? now : undefined;
      });
      for (const line of acknowledged) expect(seen.has(line), `window lost after a kill: ${line}`).toBe(true);
      acknowledged = seen;
      await serve.kill9();
      serve = undefined;
      checkDatabase(db, acknowledged.size);
    }
    serve = await startServe({ args });
    const device = await until(async () => (await getJson<DevicesJson>(`${serve!.url}/api/devices`)).devices.find((d) => d.id !== '')?.id);
    const last = await until(async () => {
      const now = await storedWindows(serve!.url, device);
      return now.size > acknowledged.size ? now : undefined;
    });
    for (const line of acknowledged) expect(last.has(line), `window lost after a kill: ${line}`).toBe(true);
    expect(await serve.stop()).toBe(0);
    serve = undefined;
    checkDatabase(db, last.size);
  });
});
