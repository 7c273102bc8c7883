// A burst of concurrent HTTP requests against a real `serve --device sim` (loopback only, a bounded count)
// stalls its event loop; frames then reach the store late and in bunches. The stored window times must not
// notice: they come from the device's sample index, so each window ends exactly its samples / fs after the one
// before it, with no holes and no repeated timestamps.

import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { getJson, scratchDir, startServe, until } from './serve-process.ts';

interface DevicesReply {
  devices: { id: string; sample_rate_hz: number; counters: { windows: number } }[];
}

const BURST = 1000;

describe('serve under a burst of concurrent requests', () => {
  const scratch = scratchDir('crabwatt-stall-');
  afterAll(() => scratch.remove());

  it(`keeps window times on the device's clock through ${BURST} concurrent requests`, async () => {
    const db = join(scratch.dir, 'crabwatt.sqlite');
    const serve = await startServe({ args: ['--device', 'sim', '--db', db] });
    let fs = 0;
    try {
      const windowsNow = async () => {
        const { devices } = await getJson<DevicesReply>(`${serve.url}/api/devices`);
        const d = devices[0];
        if (d) fs = d.sample_rate_hz;
        return d?.counters.windows ?? 0;
      };
      await until(async () => ((await windowsNow()) >= 10 ? true : undefined), 200);
      const { devices } = await getJson<DevicesReply>(`${serve.url}/api/devices`);
      const id = devices[0]!.id;
      const to = Date.now() + 60_000;
      // The heaviest reads the API has, all at once: history at full resolution, exports, the OpenAPI document.
      const urls = [
        `/api/history?device=${id}&from=0&to=${to}&points=10000&fields=p,vrms,irms,s,pf,freq_hz`,
        `/api/export.csv?device=${id}&from=0&to=${to}`,
        `/api/devices/${id}/energy`,
        '/docs/json',
        '/api/devices',
      ];
      const statuses = await Promise.all(
        Array.from({ length: BURST }, (_, k) =>
          fetch(`${serve.url}${urls[k % urls.length]}`).then(
            async (res) => (await res.arrayBuffer(), res.status),
            () => 0, // a refused connection is the server's business here, not the test's
          ),
        ),
      );
      expect(statuses.filter((s) => s === 200).length).toBeGreaterThan(0);
      const after = await windowsNow();
      await until(async () => ((await windowsNow()) >= after + 10 ? true : undefined), 200);
    } finally {
      expect(await serve.stop()).toBe(0);
    }

    const conn = new Database(db, { readonly: true });
    const rows = conn
      .prepare('SELECT end_index, samples, t_end_ms FROM windows ORDER BY epoch, end_index')
      .safeIntegers(true)
      .all() as { end_index: bigint; samples: bigint; t_end_ms: bigint }[];
    conn.close();
    expect(rows.length).toBeGreaterThan(20);
    const first = rows[0]!;
    const problems: string[] = [];
    for (let k = 1; k < rows.length; k++) {
      const prev = rows[k - 1]!;
      const w = rows[k]!;
      if (w.end_index - w.samples !== prev.end_index) problems.push(`window ${k}: starts at ${w.end_index - w.samples}, the previous ended at ${prev.end_index}`);
      if (!(w.t_end_ms > prev.t_end_ms)) problems.push(`window ${k}: t_end_ms ${w.t_end_ms} after ${prev.t_end_ms}`);
      // Device time from the first window, to the rounding of a millisecond.
      const expected = Number(first.t_end_ms) + (Number(w.end_index - first.end_index) * 1000) / fs;
      if (Math.abs(Number(w.t_end_ms) - expected) > 1) problems.push(`window ${k}: t_end_ms ${w.t_end_ms}, device time says ${expected.toFixed(1)}`);
    }
    expect(problems).toEqual([]);
  }, 300_000);
});
