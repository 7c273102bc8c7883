// A real Prometheus (Debian's `prometheus`) scraping a running `serve` with two simulated devices, through the
// token, every second. The energy it stored must be the ledger's, exactly: once the devices are stopped the
// ledger stands still, and the first scrape begun after that must hold Number(total_nwh) / 1e9 for each device.
// Every step waits on Prometheus' own answers (samples counted through its HTTP API), never on a deadline.

import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveCommand, type ServeRuntime } from '../../server/cli/serve.ts';

const TOKEN = 'prometheus-scrape-token-0123456789';

/** A loopback port nobody listens on now (Prometheus takes no port 0). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function until<T>(probe: () => Promise<T | undefined>): Promise<T> {
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 250));
  }
}

type Samples = Map<string, [number, string][]>;

describe('Prometheus scraping serve', () => {
  const dir = mkdtempSync(join(tmpdir(), 'crabwatt-prom-'));
  let stopServe!: () => void;
  let served: Promise<number>;
  let runtime: ServeRuntime;
  let prometheus: ChildProcess;
  let promUrl: string;
  let log = '';

  /** Every device's raw samples of crabwatt_energy_wh_total (seconds, value as Prometheus prints it). */
  async function energySamples(): Promise<Samples> {
    const q = encodeURIComponent('crabwatt_energy_wh_total[1h]');
    const res = await fetch(`${promUrl}/api/v1/query?query=${q}`).catch(() => undefined);
    if (!res?.ok) return new Map();
    const body = (await res.json()) as { data: { result: { metric: { device: string }; values: [number, string][] }[] } };
    return new Map(body.data.result.map((r) => [r.metric.device, r.values]));
  }

  beforeAll(async () => {
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, `${TOKEN}\n`);
    chmodSync(tokenFile, 0o600);
    const io = { out: (s: string) => void (log += s), err: (s: string) => void (log += s) };
    const until_ = new Promise<void>((resolve) => (stopServe = resolve));
    runtime = await new Promise<ServeRuntime>((resolve, reject) => {
      served = serveCommand(
        ['--device', 'sim:mains-230-50', '--device', 'sim:dc', '--speed', '20', '--db', join(dir, 'crabwatt.sqlite'),
          '--listen', '127.0.0.1:0', '--token-file', tokenFile],
        io,
        { until: until_, onReady: resolve },
      );
      served.then((code) => reject(new Error(`serve exited ${code}:\n${log}`)), reject);
    });
    const port = await freePort();
    promUrl = `http://127.0.0.1:${port}`;
    writeFileSync(
      join(dir, 'prometheus.yml'),
      [
        'global: { scrape_interval: 1s, scrape_timeout: 1s }',
        'scrape_configs:',
        '  - job_name: crabwatt',
        `    authorization: { type: Bearer, credentials_file: ${tokenFile} }`,
        `    static_configs: [{ targets: ['${new URL(runtime.address).host}'] }]`,
        '',
      ].join('\n'),
    );
    prometheus = spawn('prometheus', [
      `--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'tsdb')}`,
      `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    prometheus.stderr!.on('data', (b: Buffer) => (log += b.toString()));
  });

  afterAll(async () => {
    prometheus?.kill();
    stopServe?.();
    await served?.catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores for each device the ledger total of the moment it scraped, to the last nWh', async () => {
    // Several scrapes while energy flows: the counter is seen to rise, not just read once.
    const moving = await until(async () => {
      const s = await energySamples();
      return s.size === 2 && [...s.values()].every((v) => v.length >= 4) ? s : undefined;
    });
    for (const values of moving.values()) expect(Number(values.at(-1)![1])).toBeGreaterThan(Number(values[0]![1]));

    // Stop the devices: what is queued is written and the ledger stands still from here on.
    for (const s of runtime.sessions) await s.close();
    runtime.store.flush();
    const frozenAtS = Date.now() / 1000;
    const ids = runtime.sessions.map((s) => s.ingest.deviceId!);
    const ledger = new Map(ids.map((id) => [id, runtime.reader.energy(id, Date.now()).totalNwh]));

    const after = await until(async () => {
      const s = await energySamples();
      return ids.every((id) => (s.get(id)?.at(-1)?.[0] ?? 0) > frozenAtS) ? s : undefined;
    });
    for (const id of ids) {
      const values = after.get(id)!.map(([, v]) => Number(v));
      expect(values.at(-1)).toBe(Number(ledger.get(id)!) / 1e9);
      expect(ledger.get(id)!).toBeGreaterThan(0n);
      // A counter that never went back: no scrape saw the ledger lose energy.
      expect(values.every((v, k) => k === 0 || v >= values[k - 1]!)).toBe(true);
    }
    expect(log).not.toMatch(/api: /); // no internal error behind a scrape
    stopServe();
    expect(await served).toBe(0);
  });
});
