// API figures (issue 3): history over a year of 1 s rollups folded to 2000 points, CSV export speed and the
// server's peak memory for a year of 1 s rows, and the latency from a window reaching the host to the
// browser's WebSocket message.
//
//   npx tsx server/api/bench.ts [--json] [--db /tmp/crabwatt-bench-year.sqlite] [--days 365] [--latency-s 20]
//
// measureApi() is what `crabwatt bench-api` calls. The year is generated once into /tmp (31.5 M rows of 1 s
// rollups, by one INSERT … SELECT over a recursive CTE, then the coarser levels by GROUP BY) and reused.

import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { EventEmitter } from 'node:events';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { migrate, QUANTITIES, ROLLUP_LEVELS } from '../store/schema.ts';
import { StoreReader } from '../store/query.ts';
import { buildApp } from './app.ts';
import type { DeviceDirectory, DeviceInfo } from './deps.ts';
import { storeFromReader } from './wire.ts';

export const BENCH_DEVICE = 'bebebebebebebebe';
const BENCH_DATA_VERSION = '1';
const YEAR_START_MS = Date.UTC(2025, 0, 1);

export interface ApiFigures {
  rows_1s: number;
  history: { points: number; level: string; buckets: number; p50_ms: number; max_ms: number; goal_ms: 50; met: boolean };
  export: { rows: number; seconds: number; rows_per_s: number; bytes: number; peak_rss_mb: number; goal_rows_per_s: 1_000_000; goal_peak_mb: 150; met: boolean };
  latency: { samples: number; p50_ms: number; p99_ms: number; max_ms: number; client: string; goal_p99_ms: 100; met: boolean } | { skipped: string };
}

export interface ApiBenchOptions {
  dbPath?: string;
  days?: number;
  latencySeconds?: number;
  log?: (line: string) => void;
}

/** Generates (or reuses) a database holding `days` of 1 s rollups and the coarser levels folded from them. */
export function ensureYearDb(path: string, days: number, log: (s: string) => void = () => {}): number {
  const rows = days * 86_400;
  if (existsSync(path)) {
    const db = new Database(path, { readonly: true });
    try {
      const v = db.prepare("SELECT value FROM settings WHERE key = 'bench'").pluck().get() as string | undefined;
      if (v === `${BENCH_DATA_VERSION}:${days}`) return rows;
    } catch {
      // not ours or incomplete: rebuild
    } finally {
      db.close();
    }
    for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true });
  }
  log(`generating ${days} days of 1 s rollups into ${path} (once)…`);
  const t0 = performance.now();
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  db.pragma('cache_size = -262144');
  migrate(db);
  db.prepare(
    `INSERT INTO devices (id, device_id, name, kv, ki, fs_num, fs_den, board, adc_part, total_nwh, created_ms, last_seen_ms)
     VALUES (1, ?, 'bench', 0.05, 0.004, 4000000, 1, 0, 0, 0, ?, ?)`,
  ).run(BENCH_DEVICE, YEAR_START_MS, YEAR_START_MS + rows * 1000);
  // A daily load curve with faster wiggles; 4 M samples per second. Ten minutes a day are missing (a gap).
  const defined = ['vrms', 'irms', 'p', 's', 'pf', 'freq_hz'];
  const cols = QUANTITIES.flatMap((q) => [`${q}_wsum`, `${q}_weight`, `${q}_min`, `${q}_max`]);
  const vals = QUANTITIES.flatMap((q) =>
    defined.includes(q) ? [`${q} * 4000000`, '4000000', `${q} * 0.999`, `${q} * 1.001`] : ['0', '0', 'NULL', 'NULL'],
  );
  db.exec(`
    WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i < ${rows - 1}),
    base AS (
      SELECT i, 600 + 450 * sin(i * 7.2722e-5) + 120 * sin(i * 0.37) AS p, 230 + 3 * sin(i * 1.3e-3) AS vrms
      FROM k WHERE (i % 86400) NOT BETWEEN 43200 AND 43799
    ),
    q AS (
      SELECT i, p, vrms, p * 1.05 / vrms AS irms, p * 1.05 AS s, 1 / 1.05 AS pf, 50 + 0.02 * sin(i * 0.01) AS freq_hz FROM base
    )
    INSERT INTO rollups (device, level, t_start_ms, samples, windows, energy_nwh, flags, ${cols.join(', ')})
    SELECT 1, 1000, ${YEAR_START_MS} + i * 1000, 4000000, 5, CAST(p * 277777.7778 AS INTEGER), 0, ${vals.join(', ')} FROM q;
  `);
  log(`  1 s level: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const agg = QUANTITIES.flatMap((q) => [`sum(${q}_wsum)`, `sum(${q}_weight)`, `min(${q}_min)`, `max(${q}_max)`]);
  for (let k = 1; k < ROLLUP_LEVELS.length; k++) {
    const from = ROLLUP_LEVELS[k - 1]!.ms;
    const to = ROLLUP_LEVELS[k]!.ms;
    db.exec(`
      INSERT INTO rollups (device, level, t_start_ms, samples, windows, energy_nwh, flags, ${cols.join(', ')})
      SELECT 1, ${to}, (t_start_ms / ${to}) * ${to}, sum(samples), sum(windows), sum(energy_nwh), 0, ${agg.join(', ')}
      FROM rollups WHERE device = 1 AND level = ${from} GROUP BY t_start_ms / ${to};
    `);
  }
  db.prepare('UPDATE devices SET total_nwh = (SELECT sum(energy_nwh) FROM rollups WHERE level = 86400000) WHERE id = 1').run();
  db.prepare("INSERT OR REPLACE INTO settings (key, value) VALUES ('bench', ?)").run(`${BENCH_DATA_VERSION}:${days}`);
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  log(`  all levels: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return rows;
}

function benchDevices(): DeviceDirectory {
  const info: DeviceInfo = {
    id: BENCH_DEVICE,
    name: 'bench',
    kind: 'simulated',
    path: null,
    state: 'absent',
    detail: '',
    sampleRateHz: 4e6,
    counters: { frames: 0, crcErrors: 0, seqGaps: 0, resets: 0, reconnects: 0, framesPerS: 0 },
  };
  const refuse = async () => {
    throw new Error('not attached');
  };
  return {
    list: () => [info],
    get: (id) => (id === BENCH_DEVICE ? info : undefined),
    calibration: () => ({ v_offset: 0, i_offset: 0, v_gain: 16384, i_gain: 16384, phase: 0, kv: 0.05, ki: 0.004 }),
    setCalibration: refuse,
    requestCapture: refuse,
    capture: () => undefined,
  };
}

async function benchApp(dbPath: string) {
  const db = new Database(dbPath, { readonly: true });
  const app = await buildApp({ store: storeFromReader(new StoreReader(db)), devices: benchDevices(), live: new EventEmitter() });
  return { app, db };
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!;

async function measureHistory(dbPath: string, rows: number): Promise<ApiFigures['history']> {
  const { app, db } = await benchApp(dbPath);
  const url = `/api/history?device=${BENCH_DEVICE}&from=${YEAR_START_MS}&to=${YEAR_START_MS + rows * 1000}&points=2000&fields=p,vrms,irms`;
  const times: number[] = [];
  let level = '';
  let buckets = 0;
  for (let k = 0; k < 25; k++) {
    const t0 = performance.now();
    const r = await app.inject({ method: 'GET', url });
    const dt = performance.now() - t0;
    if (r.statusCode !== 200) throw new Error(`history answered ${r.statusCode}: ${r.body}`);
    if (k >= 5) times.push(dt); // the first runs warm the page cache and the JIT
    const h = r.json() as { level: string; t: number[] };
    level = h.level;
    buckets = h.t.length;
  }
  await app.close();
  db.close();
  times.sort((a, b) => a - b);
  const p50 = quantile(times, 0.5);
  return { points: 2000, level, buckets, p50_ms: round(p50), max_ms: round(times.at(-1)!), goal_ms: 50, met: p50 <= 50 };
}

/** Serves the export from a child process (so its peak RSS is the server's alone) and reads it here. */
async function measureExport(dbPath: string, rows: number): Promise<ApiFigures['export']> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--export-server', dbPath], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  let buf = '';
  const next = () =>
    new Promise<string>((resolve, reject) => {
      const poll = () => {
        const l = lines.shift();
        if (l !== undefined) return resolve(l);
        if (child.exitCode !== null) return reject(new Error(`export server exited with ${child.exitCode}`));
        setTimeout(poll, 20);
      };
      poll();
    });
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
  });
  const port = Number(JSON.parse(await next()).port);
  const t0 = performance.now();
  const { bytes, newlines } = await new Promise<{ bytes: number; newlines: number }>((resolve, reject) => {
    const q = `device=${BENCH_DEVICE}&from=${YEAR_START_MS}&to=${YEAR_START_MS + rows * 1000}&interval=1s&tz=Europe/Berlin`;
    http
      .get({ host: '127.0.0.1', port, path: `/api/export.csv?${q}` }, (res) => {
        if (res.statusCode !== 200) return reject(new Error(`export answered ${res.statusCode}`));
        let bytes = 0;
        let newlines = 0;
        res.on('data', (d: Buffer) => {
          bytes += d.length;
          for (let at = d.indexOf(10); at >= 0; at = d.indexOf(10, at + 1)) newlines++;
        });
        res.on('end', () => resolve({ bytes, newlines }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
  const seconds = (performance.now() - t0) / 1000;
  child.kill('SIGTERM');
  const peak = JSON.parse(await next()) as { peak_rss_mb: number };
  const dataRows = newlines - 1;
  const rate = dataRows / seconds;
  return {
    rows: dataRows,
    seconds: round(seconds),
    rows_per_s: Math.round(rate),
    bytes,
    peak_rss_mb: peak.peak_rss_mb,
    goal_rows_per_s: 1_000_000,
    goal_peak_mb: 150,
    met: rate >= 1e6 && peak.peak_rss_mb < 150,
  };
}

function peakRssMb(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Math.round(Number(m[1]) / 102.4) / 10 : NaN;
}

async function exportServer(dbPath: string): Promise<void> {
  const { app } = await benchApp(dbPath);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof addr === 'object' && addr ? addr.port : 0 })}\n`);
  process.on('SIGTERM', () => {
    process.stdout.write(`${JSON.stringify({ peak_rss_mb: peakRssMb() })}\n`);
    process.exit(0);
  });
}

async function measureLatency(seconds: number): Promise<ApiFigures['latency']> {
  if (!existsSync('/usr/bin/chromium')) return { skipped: '/usr/bin/chromium missing (apt-get install chromium)' };
  const { chromium } = await import('playwright-core');
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { startSimStack } = await import('./sim-stack.ts');
  // Two-cycle windows: 25 windows/s gives enough samples for a p99 in a short run.
  const stack = await startSimStack({ speed: 1, bootConfig: { cycles: 2 } });
  const profile = mkdtempSync(join(tmpdir(), 'crabwatt-bench-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    await page.goto(stack.url);
    await page.waitForFunction(() => window.crabwatt.latenciesMs.length > 0, null, { timeout: 20_000 });
    await page.evaluate(() => window.crabwatt.latenciesMs.splice(0));
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const lat = (await page.evaluate(() => window.crabwatt.latenciesMs.slice())).sort((a, b) => a - b);
    const p99 = quantile(lat, 0.99);
    return { samples: lat.length, p50_ms: quantile(lat, 0.5), p99_ms: p99, max_ms: lat.at(-1)!, client: 'Chromium (dashboard page)', goal_p99_ms: 100, met: p99 <= 100 };
  } finally {
    await context.close();
    await stack.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

const round = (x: number) => Math.round(x * 100) / 100;

export async function measureApi(opts: ApiBenchOptions = {}): Promise<ApiFigures> {
  const log = opts.log ?? (() => {});
  const days = opts.days ?? 365;
  const dbPath = opts.dbPath ?? `/tmp/crabwatt-bench-${days}d.sqlite`;
  const rows = ensureYearDb(dbPath, days, log);
  log('history…');
  const history = await measureHistory(dbPath, rows);
  log('export…');
  const exp = await measureExport(dbPath, rows);
  log('latency…');
  const latency = await measureLatency(opts.latencySeconds ?? 20);
  return { rows_1s: rows, history, export: exp, latency };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const arg = (name: string) => {
    const k = args.indexOf(name);
    return k >= 0 ? args[k + 1] : undefined;
  };
  if (args[0] === '--export-server') {
    await exportServer(args[1]!);
  } else {
    const json = args.includes('--json');
    const figures = await measureApi({
      dbPath: arg('--db'),
      days: arg('--days') ? Number(arg('--days')) : undefined,
      latencySeconds: arg('--latency-s') ? Number(arg('--latency-s')) : undefined,
      log: json ? undefined : (l) => console.error(l),
    });
    console.log(JSON.stringify(figures, null, json ? 0 : 2));
  }
}
