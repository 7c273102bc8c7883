import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { ROLLUP_LEVELS } from '../../server/store/schema.ts';
import { levelSums, tempDir } from './helpers.ts';

const CHILD = fileURLToPath(new URL('./fixtures/ingest-child.ts', import.meta.url));
const SECONDS = 12;

function startChild(db: string): { child: ChildProcess; lines: string[]; waitFor: (pred: (line: string) => boolean) => Promise<string>; exit: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, db, '42', String(SECONDS)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters: { pred: (l: string) => boolean; resolve: (l: string) => void }[] = [];
  let stderr = '';
  createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(line);
    for (const w of waiters.splice(0)) (w.pred(line) ? w.resolve(line) : waiters.push(w));
  });
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const waitFor = (pred: (l: string) => boolean) =>
    new Promise<string>((resolve, reject) => {
      const hit = lines.find(pred);
      if (hit) return resolve(hit);
      waiters.push({ pred, resolve });
      void exit.then(() => setTimeout(() => reject(new Error(`child exited before the expected line; stderr: ${stderr}`)), 50));
    });
  return { child, lines, waitFor, exit };
}

function check(dbPath: string) {
  const db = new Database(dbPath, { readonly: true });
  db.defaultSafeIntegers(true);
  try {
    const one = (sql: string) => db.prepare(sql).pluck().get() as bigint | string | null;
    const integrity = one('PRAGMA integrity_check');
    const windows = BigInt(one('SELECT count(*) FROM windows') as bigint);
    const distinct = BigInt(one('SELECT count(*) FROM (SELECT DISTINCT device, epoch, end_index FROM windows)') as bigint);
    const windowNwh = BigInt((one('SELECT sum(energy_nwh) FROM windows') as bigint | null) ?? 0n);
    const gapNwh = BigInt((one('SELECT sum(energy_nwh) FROM energy_gaps') as bigint | null) ?? 0n);
    const total = BigInt((one('SELECT sum(total_nwh) FROM devices') as bigint | null) ?? 0n);
    // Every level, the 1 s one from its rows and its packs.
    const levels = ROLLUP_LEVELS.map((l) => ({ level: l.name, e: levelSums(db, l.ms).energyNwh }));
    const packs = Number(one('SELECT count(*) FROM rollup_packs WHERE rows > 0'));
    const epochs = BigInt(one('SELECT count(*) FROM epochs') as bigint);
    return { integrity, windows, distinct, windowNwh, gapNwh, total, levels, epochs, packs };
  } finally {
    db.close();
  }
}

describe('kill -9 of an ingesting process', () => {
  const { dir, cleanup } = tempDir('crabwatt-kill-');
  afterAll(() => cleanup());

  it('leaves a consistent database; a restart re-ingesting the same frames counts nothing twice', async () => {
    const db = join(dir, 'kill.sqlite');
    const first = startChild(db);
    // Wait until several transactions are on disk and the child is in the middle of the next batch.
    await first.waitFor((l) => l.startsWith('progress') && Number(l.split(' ')[1]) >= 5);
    first.child.kill('SIGKILL');
    expect(await first.exit).toBe(null);

    const killed = check(db);
    expect(killed.integrity).toBe('ok');
    expect(killed.windows).toBeGreaterThan(0n);
    expect(killed.distinct).toBe(killed.windows);
    // The ledger on disk matches the rows on disk.
    expect(killed.windowNwh + killed.gapNwh).toBe(killed.total);
    for (const l of killed.levels) expect(l.e, `level ${l.level}`).toBe(killed.total);

    // Restart: the same device replays the same frames from its boot; the lock of the dead process is taken over.
    const second = startChild(db);
    const doneLine = await second.waitFor((l) => l.startsWith('done'));
    expect(await second.exit).toBe(0);
    const report = JSON.parse(doneLine.slice(5)) as { windowFrames: number; expectedNwh: string; duplicates: number };
    const final = check(db);
    expect(final.integrity).toBe('ok');
    expect(report.duplicates).toBe(Number(killed.windows));
    expect(final.windows).toBe(BigInt(report.windowFrames));
    expect(final.distinct).toBe(final.windows);
    expect(final.epochs).toBe(1n);
    expect(final.total).toBe(BigInt(report.expectedNwh));
    expect(final.total >= killed.total).toBe(true);
    expect(final.gapNwh).toBe(0n);
    for (const l of final.levels) expect(l.e, `level ${l.level}`).toBe(final.total);
    // The hour closed 6 s in is packed, and its seconds are in the pack only.
    expect(final.packs).toBe(1);
    const hourMs = Date.UTC(2026, 6, 1) - 3_600_000;
    const rowsInPackedHour = new Database(db, { readonly: true });
    try {
      expect(rowsInPackedHour.prepare('SELECT count(*) FROM rollups WHERE level = 1000 AND t_start_ms >= ? AND t_start_ms < ?').pluck().get(hourMs, hourMs + 3_600_000)).toBe(0);
    } finally {
      rowsInPackedHour.close();
    }
  });
});
