import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../store/helpers.ts';

const CHILD = fileURLToPath(new URL('./fixtures/pq-child.ts', import.meta.url));
const SECONDS = 6;

/** Runs the child until `stop` says so (then kill -9) or to its end; the lines it printed. */
function runChild(db: string, stop: (line: string) => boolean): Promise<{ lines: string[]; code: number | null }> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, db, '31', String(SECONDS)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    lines.push(line);
    if (stop(line)) child.kill('SIGKILL');
  });
  return new Promise((resolve) => child.on('exit', (code) => resolve({ lines, code })));
}

function storedEvents(dbPath: string): { kind: string; start: number }[] {
  const db = new Database(dbPath, { readonly: true });
  try {
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    return db.prepare('SELECT kind, start_index AS start FROM pq_events ORDER BY start_index, kind').all() as { kind: string; start: number }[];
  } finally {
    db.close();
  }
}

const key = (e: { kind: string; start: number }): string => `${e.kind}@${e.start}`;

describe('kill -9 of a process storing power-quality events', () => {
  const { dir, cleanup } = tempDir('crabwatt-pqkill-');
  afterAll(() => cleanup());

  it('keeps what was written; the restart re-analysing the same frames stores every event once', async () => {
    const db = join(dir, 'pq.sqlite');
    // Killed once a few events were detected and written (a flush after them), mid-run.
    let detectedAt = -1;
    const first = await runChild(db, (line) => {
      const [word, flushes, events] = line.split(' ');
      if (word !== 'progress') return false;
      if (detectedAt < 0 && Number(events) >= 3) detectedAt = Number(flushes);
      return detectedAt >= 0 && Number(flushes) >= detectedAt + 2;
    });
    expect(first.code).toBe(null);
    const killed = storedEvents(db);
    expect(killed.length).toBeGreaterThanOrEqual(3);
    expect(new Set(killed.map(key)).size).toBe(killed.length);

    const second = await runChild(db, () => false);
    expect(second.code).toBe(0);
    const report = JSON.parse(second.lines.at(-1)!.slice(5)) as { events: { kind: string; start: number }[] };
    const final = storedEvents(db);
    // Exactly the events of the whole run, once each: those written before the kill were not lost or doubled.
    expect(final.map(key).sort()).toEqual(report.events.map(key).sort());
    for (const e of killed) expect(final.map(key)).toContain(key(e));
    expect(report.events.length).toBeGreaterThan(killed.length);
  });
});
