// API figures (issue 3): history over a year of 1 s rollups folded to 2000 points, CSV export speed and the
// server's peak memory for a year of 1 s rows, and the latency from a window reaching the host to the
// browser's WebSocket message.
//
//   npx tsx server/api/bench.ts [--json] [--db /tmp/crabwatt-bench-year.sqlite] [--days 365] [--latency-s 20]
//                               [--compare]   (the export again without each setting of the shipped runtime)
//
// measureApi() is what `crabwatt bench-api` calls. The year is generated once into /tmp (31.5 M 1 s rollups in
// 8 760 hourly packs, as the store keeps closed hours, the coarser levels accumulated on the way) and reused; the export is then
// measured in a fresh child process, so its peak RSS is the exporting server's alone.

import { spawn } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { createInterface } from 'node:readline';
import { EventEmitter } from 'node:events';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { migrate, QUANTITIES, ROLLUP_LEVELS } from '../store/schema.ts';
import { PACK_MS, PackBuilder } from '../store/pack.ts';
import { StoreReader } from '../store/query.ts';
import { buildApp } from './app.ts';
import type { DeviceDirectory, DeviceInfo } from './deps.ts';
import { storeFromReader } from './wire.ts';

export const BENCH_DEVICE = 'bebebebebebebebe';
const BENCH_DATA_VERSION = '4';
const YEAR_START_MS = Date.UTC(2025, 0, 1);

export interface ApiFigures {
  rows_1s: number;
  /** Wall time through app.inject (validation, store, serialisation); cpu_p50_ms is this process's CPU time. */
  history: { points: number; level: string; buckets: number; p50_ms: number; max_ms: number; cpu_p50_ms: number; goal_ms: 50; met: boolean };
  /** Over HTTP from a child server process; rows_per_cpu_s divides by that server's CPU time (robust to a loaded machine). */
  export: {
    rows: number;
    seconds: number;
    rows_per_s: number;
    server_cpu_s: number;
    rows_per_cpu_s: number;
    bytes: number;
    idle_rss_mb: number;
    peak_rss_mb: number;
    /**
     * How long the server's event loop was held up while it exported (perf_hooks' event-loop delay): what a
     * window arriving from the device, or a WebSocket client, would wait for during a large export.
     */
    loop_delay_ms: { p99: number; max: number };
    /** The server's CPU split and page faults while it exported: what the kernel did for it (process.resourceUsage()). */
    server_user_s: number;
    server_sys_s: number;
    minor_page_faults: number;
    goal_rows_per_s: 1_000_000;
    goal_peak_mb: 150;
    met: boolean;
    /** The server's runtime: `crabwatt serve`'s (servedRuntime()) for `export`. */
    runtime: { env: Record<string, string>; node_flags: string[] };
  };
  /**
   * With `--compare`: the same export from servers that each leave out one setting of the shipped runtime
   * (node's default young generation; glibc's default malloc thresholds), to show what each is worth.
   */
  export_variants?: (ApiFigures['export'] & { leaves_out: string })[];
  latency: { samples: number; p50_ms: number; p99_ms: number; max_ms: number; client: string; goal_p99_ms: 100; met: boolean } | { skipped: string };
}

/** How `crabwatt serve` runs: environment assignments and node flags. */
export interface ServedRuntime {
  env: Record<string, string>;
  nodeFlags: string[];
}

/**
 * The environment and node flags `crabwatt serve` runs with: read from the shebang of server/bin/crabwatt.mjs,
 * the one place they are set (the npm scripts run that file; test/cli checks it), so the export is measured as
 * it ships.
 */
export function servedRuntime(): ServedRuntime {
  const first = readFileSync(fileURLToPath(new URL('../bin/crabwatt.mjs', import.meta.url)), 'utf8').split('\n', 1)[0]!;
  const m = /^#!\/usr\/bin\/env -S((?: [A-Z_][A-Z0-9_]*=\S+)*) node((?: \S+)*)$/.exec(first);
  if (!m) throw new Error(`server/bin/crabwatt.mjs: unexpected first line ${JSON.stringify(first)}`);
  const env = Object.fromEntries(m[1]!.trim().split(' ').filter(Boolean).map((a) => [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]));
  return { env, nodeFlags: m[2]!.trim().split(' ').filter(Boolean) };
}

export interface ApiBenchOptions {
  dbPath?: string;
  days?: number;
  latencySeconds?: number;
  /** Also measure the export with each setting of the shipped runtime left out (export_variants). */
  compare?: boolean;
  log?: (line: string) => void;
}

/**
 * Generates (or reuses) a database holding `days` of 1 s rollups and the coarser levels folded from them, with
 * the store's schema (migrate) and stats layout (one float64 BLOB per bucket: see server/store/schema.ts).
 * One prepared INSERT in large transactions; the coarser buckets are accumulated on the way.
 */
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
  }
  for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(path + suffix, { force: true });
  log(`generating ${days} days of 1 s rollups into ${path} (once)…`);
  const t0 = performance.now();
  const db = new Database(path);
  // A scratch database: no journal, no fsync. Readers open it read-only afterwards.
  db.pragma('journal_mode = OFF');
  db.pragma('synchronous = OFF');
  migrate(db);
  db.prepare(
    `INSERT INTO devices (id, device_id, name, kv, ki, fs_num, fs_den, board, adc_part, total_nwh, created_ms, last_seen_ms)
     VALUES (1, ?, 'bench', 0.05, 0.004, 4000000, 1, 0, 0, 0, ?, ?)`,
  ).run(BENCH_DEVICE, YEAR_START_MS, YEAR_START_MS + rows * 1000);
  const insert = db.prepare(
    'INSERT INTO rollups (device, level, t_start_ms, samples, windows, energy_nwh, flags, stats) VALUES (1, ?, ?, ?, ?, ?, 0, ?)',
  );
  const Q = QUANTITIES.length;
  const qi = (name: string) => QUANTITIES.indexOf(name as (typeof QUANTITIES)[number]);
  const defined = ['vrms', 'irms', 'p', 's', 'pf', 'freq_hz'].map(qi);
  // Stats of one bucket as 4 float64 per quantity [wsum, weight, min, max]; little-endian like the host.
  const one = new Float64Array(Q * 4);
  const values = new Float64Array(Q);
  const SAMPLES = 4_000_000;
  const coarse = ROLLUP_LEVELS.slice(1).map((l) => ({
    ms: l.ms,
    start: NaN,
    samples: 0,
    windows: 0,
    energy: 0,
    stats: new Float64Array(Q * 4),
  }));
  const resetStats = (st: Float64Array) => {
    for (let q = 0; q < Q; q++) {
      st[4 * q] = 0;
      st[4 * q + 1] = 0;
      st[4 * q + 2] = NaN;
      st[4 * q + 3] = NaN;
    }
  };
  const flush = (c: (typeof coarse)[number]) => {
    if (c.samples > 0) insert.run(c.ms, c.start, c.samples, c.windows, c.energy, Buffer.from(c.stats.buffer));
    c.samples = 0;
    c.windows = 0;
    c.energy = 0;
    c.stats = new Float64Array(Q * 4);
    resetStats(c.stats);
  };
  for (const c of coarse) resetStats(c.stats);
  resetStats(one);
  // The hourly packs of the 1 s rows, as the store's writer makes them once an hour is closed (pack.ts).
  const pack = new PackBuilder();
  let packHour = NaN;
  const putPack = db.prepare('INSERT INTO rollup_packs (device, t_start_ms, rows, data) VALUES (1, ?, ?, ?)');
  const flushPack = () => {
    if (pack.rows > 0) {
      const { rows: n, data } = pack.encode();
      putPack.run(packHour, n, data);
    }
    pack.reset();
  };
  let total = 0;
  const BATCH = 1_000_000;
  const run = db.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const t = YEAR_START_MS + i * 1000;
      for (const c of coarse) {
        const start = t - (t % c.ms);
        if (start !== c.start) {
          flush(c);
          c.start = start;
        }
      }
      const hour = t - (t % PACK_MS);
      if (hour !== packHour) {
        flushPack();
        packHour = hour;
      }
      // Ten minutes a day are missing: a gap the history must show.
      const sod = i % 86_400;
      if (sod >= 43_200 && sod < 43_800) continue;
      // A daily load curve with faster wiggles.
      const p = 600 + 450 * Math.sin(i * 7.2722e-5) + 120 * Math.sin(i * 0.37);
      const vrms = 230 + 3 * Math.sin(i * 1.3e-3);
      values[qi('p')] = p;
      values[qi('vrms')] = vrms;
      values[qi('irms')] = (p * 1.05) / vrms;
      values[qi('s')] = p * 1.05;
      values[qi('pf')] = 1 / 1.05;
      values[qi('freq_hz')] = 50 + 0.02 * Math.sin(i * 0.01);
      for (const q of defined) {
        const v = values[q]!;
        one[4 * q] = v * SAMPLES;
        one[4 * q + 1] = SAMPLES;
        one[4 * q + 2] = v * 0.999;
        one[4 * q + 3] = v * 1.001;
      }
      const energy = Math.round(p * 277_777.7778); // nWh in one second at p watts
      total += energy;
      // Every hour here is closed, so its 1 s level is its pack only, as the store keeps it (schema 3).
      pack.add(t, SAMPLES, 5, energy, 0, one);
      for (const c of coarse) {
        c.samples += SAMPLES;
        c.windows += 5;
        c.energy += energy;
        for (const q of defined) {
          const st = c.stats;
          st[4 * q] = st[4 * q]! + one[4 * q]!;
          st[4 * q + 1] = st[4 * q + 1]! + SAMPLES;
          st[4 * q + 2] = Number.isNaN(st[4 * q + 2]!) ? one[4 * q + 2]! : Math.min(st[4 * q + 2]!, one[4 * q + 2]!);
          st[4 * q + 3] = Number.isNaN(st[4 * q + 3]!) ? one[4 * q + 3]! : Math.max(st[4 * q + 3]!, one[4 * q + 3]!);
        }
      }
    }
  });
  for (let from = 0; from < rows; from += BATCH) {
    run(from, Math.min(rows, from + BATCH));
    if ((from / BATCH) % 5 === 4) log(`  ${((from + BATCH) / 1e6).toFixed(0)} M rows, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  }
  db.transaction(() => {
    coarse.forEach(flush);
    flushPack();
  })();
  db.prepare('UPDATE devices SET total_nwh = ? WHERE id = 1').run(total);
  db.prepare("INSERT OR REPLACE INTO settings (key, value) VALUES ('bench', ?)").run(`${BENCH_DATA_VERSION}:${days}`);
  db.close();
  log(`  done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
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
    health: { state: 'ok', detail: '' },
    counters: { bytes: 0, rejected: 0, dropped: 0, frames: 0, crcErrors: 0, seqGaps: 0, resets: 0, reconnects: 0, framesPerS: 0, windows: 0, duplicates: 0 },
    warning: null,
    deviceHealth: null,
  };
  const refuse = async () => {
    throw new Error('not attached');
  };
  return {
    list: () => [info],
    get: (id) => (id === BENCH_DEVICE ? info : undefined),
    calibration: () => ({ calibration: { v_offset: 0, i_offset: 0, v_gain: 16384, i_gain: 16384, phase: 0, kv: 0.05, ki: 0.004 }, configSeq: null }),
    setCalibration: refuse,
    requestCapture: refuse,
    capture: () => undefined,
  };
}

async function benchApp(dbPath: string) {
  const db = new Database(dbPath, { readonly: true });
  // With the path, as `crabwatt serve` wires it: an export reads on its own connection.
  const app = await buildApp({ store: storeFromReader(new StoreReader(db), dbPath), devices: benchDevices(), live: new EventEmitter() });
  return { app, db };
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!;

async function measureHistory(dbPath: string, rows: number): Promise<ApiFigures['history']> {
  const { app, db } = await benchApp(dbPath);
  const url = `/api/history?device=${BENCH_DEVICE}&from=${YEAR_START_MS}&to=${YEAR_START_MS + rows * 1000}&points=2000&fields=p,vrms,irms`;
  const times: number[] = [];
  const cpuTimes: number[] = [];
  let level = '';
  let buckets = 0;
  for (let k = 0; k < 25; k++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const r = await app.inject({ method: 'GET', url });
    const dt = performance.now() - t0;
    const c = process.cpuUsage(c0);
    if (r.statusCode !== 200) throw new Error(`history answered ${r.statusCode}: ${r.body}`);
    if (k >= 5) {
      // The first runs warm the page cache and the JIT.
      times.push(dt);
      cpuTimes.push((c.user + c.system) / 1000);
    }
    const h = r.json() as { level: string; t: number[] };
    level = h.level;
    buckets = h.t.length;
  }
  await app.close();
  db.close();
  times.sort((a, b) => a - b);
  cpuTimes.sort((a, b) => a - b);
  const p50 = quantile(times, 0.5);
  return {
    points: 2000,
    level,
    buckets,
    p50_ms: round(p50),
    max_ms: round(times.at(-1)!),
    cpu_p50_ms: round(quantile(cpuTimes, 0.5)),
    goal_ms: 50,
    met: p50 <= 50,
  };
}

/** Serves the export from a child process (so its peak RSS is the server's alone) and reads it here. */
async function measureExport(dbPath: string, rows: number, runtime: ServedRuntime): Promise<ApiFigures['export']> {
  const env = { ...process.env };
  delete env.GLIBC_TUNABLES; // only what `runtime` sets
  const child = spawn(process.execPath, [...runtime.nodeFlags, '--import', 'tsx', fileURLToPath(import.meta.url), '--export-server', dbPath], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...env, ...runtime.env },
  });
  const lines: string[] = [];
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
  createInterface({ input: child.stdout! }).on('line', (line) => lines.push(line));
  const ready = JSON.parse(await next()) as { port: number; idle_rss_mb: number };
  const port = ready.port;
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
      // A stalled export fails the bench instead of hanging it.
      .setTimeout(60_000, function (this: http.ClientRequest) {
        this.destroy(new Error('the export sent nothing for 60 s'));
      })
      .on('error', reject);
  });
  const seconds = (performance.now() - t0) / 1000;
  child.kill('SIGTERM');
  const peak = JSON.parse(await next()) as {
    peak_rss_mb: number;
    user_s: number;
    sys_s: number;
    minor_page_faults: number;
    loop_delay_ms: { p99: number; max: number };
  };
  const dataRows = newlines - 1;
  const rate = dataRows / seconds;
  const cpuS = peak.user_s + peak.sys_s;
  return {
    rows: dataRows,
    seconds: round(seconds),
    rows_per_s: Math.round(rate),
    server_cpu_s: round(cpuS),
    rows_per_cpu_s: Math.round(dataRows / cpuS),
    bytes,
    idle_rss_mb: ready.idle_rss_mb,
    peak_rss_mb: peak.peak_rss_mb,
    loop_delay_ms: peak.loop_delay_ms,
    server_user_s: round(peak.user_s),
    server_sys_s: round(peak.sys_s),
    minor_page_faults: peak.minor_page_faults,
    goal_rows_per_s: 1_000_000,
    goal_peak_mb: 150,
    met: rate >= 1e6 && peak.peak_rss_mb < 150,
    runtime: { env: runtime.env, node_flags: runtime.nodeFlags },
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
  const usage0 = process.resourceUsage();
  const delay = monitorEventLoopDelay({ resolution: 5 });
  delay.enable();
  process.stdout.write(`${JSON.stringify({ port: typeof addr === 'object' && addr ? addr.port : 0, idle_rss_mb: peakRssMb() })}\n`);
  process.on('SIGTERM', () => {
    const u = process.resourceUsage();
    delay.disable();
    const loop_delay_ms = { p99: round(delay.percentile(99) / 1e6), max: round(delay.max / 1e6) };
    const user_s = (u.userCPUTime - usage0.userCPUTime) / 1e6;
    const sys_s = (u.systemCPUTime - usage0.systemCPUTime) / 1e6;
    const minor_page_faults = u.minorPageFault - usage0.minorPageFault;
    process.stdout.write(`${JSON.stringify({ peak_rss_mb: peakRssMb(), user_s, sys_s, minor_page_faults, loop_delay_ms })}\n`);
    process.exit(0);
  });
}

async function measureLatency(seconds: number): Promise<ApiFigures['latency']> {
  if (!existsSync('/usr/bin/chromium')) return { skipped: '/usr/bin/chromium missing (apt-get install chromium)' };
  const { chromium } = await import('playwright-core');
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { serveSimulated } = await import('./serve-in-process.ts');
  const stack = await serveSimulated();
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
  const served = servedRuntime();
  const exp = await measureExport(dbPath, rows, served);
  const variants: NonNullable<ApiFigures['export_variants']> = [];
  if (opts.compare) {
    const others: [string, ServedRuntime][] = [
      ['--max-semi-space-size', { env: served.env, nodeFlags: served.nodeFlags.filter((f) => !f.startsWith('--max-semi-space-size')) }],
      ['GLIBC_TUNABLES', { env: Object.fromEntries(Object.entries(served.env).filter(([k]) => k !== 'GLIBC_TUNABLES')), nodeFlags: served.nodeFlags }],
    ];
    for (const [left, runtime] of others) {
      log(`export without ${left}…`);
      variants.push({ ...(await measureExport(dbPath, rows, runtime)), leaves_out: left });
    }
  }
  log('latency…');
  const latency = await measureLatency(opts.latencySeconds ?? 30);
  return {
    rows_1s: rows,
    history,
    export: exp,
    ...(variants.length > 0 ? { export_variants: variants } : {}),
    latency,
  };
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
      compare: args.includes('--compare'),
      log: json ? undefined : (l) => console.error(l),
    });
    console.log(JSON.stringify(figures, null, json ? 0 : 2));
  }
}
