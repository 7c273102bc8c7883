import { spawn } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../server/cli.ts';
import type { Io } from '../../server/cli/common.ts';
import { CSV_HEADER } from '../../server/export/csv.ts';
import { renderDecimatorVectors } from '../../server/dsp/decimator-vectors.ts';
import { renderVectors } from '../../server/dsp/vectors.ts';
import { generateCHeader } from '../../server/protocol/c-header.ts';
import { acquireLock, databaseLockPath } from '../../server/store/lock.ts';
import { Store } from '../../server/store/store.ts';
import { derivedFor, makeWindow, tempDir } from '../store/helpers.ts';
import { BIN, runCli } from '../faults/serve-process.ts';


function capture(): Io & { stdout: () => string; stderr: () => string } {
  let out = '';
  let err = '';
  return { out: (t) => void (out += t), err: (t) => void (err += t), stdout: () => out, stderr: () => err };
}

/** Run the real entry point as a user would. */
const cli = runCli;

const T0 = Date.UTC(2026, 2, 29, 0, 0);
let dir: string;
let cleanup: () => void;
let db: string;

beforeAll(() => {
  ({ dir, cleanup } = tempDir('crabwatt-cli-'));
  db = join(dir, 'cli.sqlite');
  const store = Store.open(db);
  const dev = store.attachDevice({ deviceId: 0x1234n, bootId: 1, fsNum: 1000, fsDen: 1, defaultKv: 0.05, defaultKi: 0.004 }, T0);
  for (let k = 1; k <= 720; k++) store.addWindow(dev, makeWindow(BigInt(k * 5000), 5000, 2_000_000_000n), derivedFor(50), T0 + k * 5000);
  store.close();
});
afterAll(() => cleanup());

describe('crabwatt CLI', () => {
  it('prints usage and refuses unknown commands', async () => {
    const io = capture();
    expect(await main(['--help'], io)).toBe(0);
    expect(io.stdout()).toMatch(/serve .*\n.*devices/s);
    const bad = capture();
    expect(await main(['frobnicate'], bad)).toBe(2);
    expect(bad.stderr()).toMatch(/unknown command 'frobnicate'/);
  });

  it('has --help for every command', async () => {
    for (const cmd of ['serve', 'devices', 'export', 'replay', 'vectors', 'gen-header', 'flash', 'reboot', 'bench']) {
      const io = capture();
      expect(await main([cmd, '--help'], io), cmd).toBe(0);
      expect(io.stdout(), cmd).toContain(`crabwatt ${cmd}`);
    }
  });

  it('gen-header and vectors write what their generators produce', async () => {
    const header = join(dir, 'protocol.h');
    const io = capture();
    expect(await main(['gen-header', '--output', header], io)).toBe(0);
    expect(readFileSync(header, 'utf8')).toBe(generateCHeader());
    const vectors = join(dir, 'vectors');
    expect(await main(['vectors', '--dir', vectors], io)).toBe(0);
    const written = io.stdout().trim().split('\n').filter((l) => l.startsWith(vectors));
    expect(written.length).toBeGreaterThan(3);
    // The DSP vectors at the top, the decimated stream's in decimator/.
    const expected = new Map([
      ...[...renderVectors()].map(([name, text]) => [join(vectors, name), text] as const),
      ...[...renderDecimatorVectors()].map(([name, text]) => [join(vectors, 'decimator', name), text] as const),
    ]);
    expect(written.sort()).toEqual([...expected.keys()].sort());
    for (const file of written) expect(readFileSync(file, 'utf8'), file).toBe(expected.get(file));
  });

  it('turns bad options into a usage error with exit code 2', async () => {
    const io = capture();
    expect(await main(['export', '--from', '2026-03-29', '--to', '2026-03-30', '--tz', 'Nowhere/Land', '--db', db], io)).toBe(2);
    expect(io.stderr()).toMatch(/unknown time zone 'Nowhere\/Land'/);
    const unknown = capture();
    expect(await main(['serve', '--colour'], unknown)).toBe(2);
    expect(unknown.stderr()).toMatch(/--colour/);
    const missing = capture();
    expect(await main(['export', '--db', join(dir, 'nope.sqlite'), '--from', '2026-03-29', '--to', '2026-03-30'], missing)).toBe(1);
    expect(missing.stderr()).toMatch(/no such file/);
  });

  it('export writes a CSV file with the documented header', async () => {
    const out = join(dir, 'out.csv');
    const run = await cli(['export', '--db', db, '--from', '2026-03-29T00:00Z', '--to', '2026-03-29T01:00Z', '--interval', '15m', '--tz', 'Europe/Berlin', '-o', out]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const lines = readFileSync(out, 'utf8').trimEnd().split('\n');
    expect(lines[0]).toBe(CSV_HEADER);
    expect(lines.slice(1).map((l) => l.split(',')[0])).toEqual([
      '2026-03-29T01:00:00+01:00', '2026-03-29T01:15:00+01:00', '2026-03-29T01:30:00+01:00', '2026-03-29T01:45:00+01:00',
    ]);
  });

  it('replay prints one JSON line per window of a tiny CSV', async () => {
    const csv = join(dir, 'tiny.csv');
    const rows = ['v,i'];
    // 20 kHz, 50 Hz: 400 samples per cycle, 2.5 cycles per 1000 samples.
    for (let n = 0; n < 12_000; n++) {
      const ph = (2 * Math.PI * n) / 400;
      rows.push(`${Math.round(4000 * Math.sin(ph))},${Math.round(1000 * Math.sin(ph - 0.5))}`);
    }
    writeFileSync(csv, rows.join('\n') + '\n');
    const run = await cli(['replay', '--input', csv, '--rate', '20000', '--v-scale', '0.05', '--i-scale', '0.004', '--mode', 'cycles:10']);
    expect(run.code).toBe(0);
    const windows = run.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, number | null>);
    expect(windows.length).toBeGreaterThanOrEqual(3);
    const full = windows[1]!;
    for (const key of ['vrms', 'irms', 'p', 's', 'pf', 'n', 'freq_hz', 'energy_wh', 'samples']) expect(full).toHaveProperty(key);
    expect(full['freq_hz']).toBeCloseTo(50, 6);
    expect(full['vrms']).toBeCloseTo((4000 * 0.05) / Math.SQRT2, 1);
    const bad = await cli(['replay', '--input', join(dir, 'absent.csv'), '--rate', '1', '--v-scale', '1', '--i-scale', '1']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/no such file/);
  });

  it('devices works where udevadm is missing', async () => {
    const run = await cli(['devices', '--db', db], { ...process.env, PATH: '/nonexistent' });
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/attached:/);
    expect(run.stdout).toMatch(/0000000000001234/);
  });

  it('serve explains a serial device that is not there, and leaves no locks behind', async () => {
    const io = capture();
    const absent = join(dir, 'ttyACM-absent');
    const code = await main(['serve', '--device', absent, '--db', join(dir, 'absent.sqlite'), '--listen', '127.0.0.1:1'], io);
    expect(code).toBe(1);
    expect(io.stderr()).toMatch(/does not exist \(unplugged\?\)/);
    acquireLock(databaseLockPath(join(dir, 'absent.sqlite')), 'the next serve').release();
  });

  it('serve stores measurements, and a second serve on the same database is refused', async () => {
    const serveDb = join(dir, 'serve.sqlite');
    const port = 20000 + (process.pid % 20000);
    const child = spawn(process.execPath, [BIN, 'serve', '--device', 'sim', '--db', serveDb, '--listen', `127.0.0.1:${port}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      child.stderr.on('data', (b: Buffer) => {
        stderr += b.toString();
        if (stderr.includes('dashboard and API on')) resolve();
      });
      void exited.then(() => reject(new Error(`serve exited early: ${stderr}`)));
    });
    const second = capture();
    expect(await main(['serve', '--device', 'sim', '--db', serveDb, '--listen', `127.0.0.1:${port + 1}`], second)).toBe(1);
    expect(second.stderr()).toMatch(new RegExp(`in use by another crabwatt process \\(pid ${child.pid}`));
    // Let a few windows (5 per second) reach the database, then stop it the way Ctrl-C does.
    await new Promise((r) => setTimeout(r, 2500));
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    const check = new Database(serveDb, { readonly: true });
    const windows = check.prepare('SELECT count(*) FROM windows').pluck().get() as number;
    const integrity = check.prepare('PRAGMA integrity_check').pluck().get();
    check.close();
    expect(integrity).toBe('ok');
    expect(windows).toBeGreaterThan(3);
  });
});
