// The single-writer lock under attack: many processes starting at the same moment on one database, through
// its real path and through a symlink, each round right after the previous owner was killed with SIGKILL
// (so its lock was never released by crabwatt, only by the kernel). Exactly one owner every round.
// Then the same with the real `crabwatt serve`.

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, scratchDir, startServe, until } from './serve-process.ts';

const CHILD = fileURLToPath(new URL('./fixtures/lock-child.ts', import.meta.url));
const ROUNDS = 20;

interface Contender {
  path: string;
  proc: ChildProcessWithoutNullStreams;
  next(): Promise<string>;
  exited: Promise<void>;
}

function contender(path: string): Contender {
  const proc = spawn(process.execPath, ['--import', 'tsx', CHILD, path], { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiting: ((line: string) => void)[] = [];
  let stderr = '';
  proc.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  createInterface({ input: proc.stdout }).on('line', (line) => {
    const w = waiting.shift();
    if (w) w(line);
    else lines.push(line);
  });
  const exited = new Promise<void>((resolve) => proc.on('exit', () => resolve()));
  const next = (): Promise<string> =>
    lines.length > 0
      ? Promise.resolve(lines.shift()!)
      : new Promise<string>((resolve, reject) => {
          waiting.push(resolve);
          void exited.then(() => reject(new Error(`lock child for ${path} exited:\n${stderr}`)));
        });
  return { path, proc, next, exited };
}

describe('the single-writer lock', () => {
  const scratch = scratchDir('crabwatt-lock-');
  const db = join(scratch.dir, 'crabwatt.sqlite');
  const link = join(scratch.dir, 'via-symlink.sqlite');
  const everyone: Contender[] = [];

  beforeAll(() => symlinkSync(db, link));
  afterAll(() => {
    for (const c of everyone) c.proc.kill('SIGKILL');
    scratch.remove();
  });

  it(`gives exactly one owner in each of ${ROUNDS} rounds of 4 processes (2 by symlink) started together after a kill -9 of the owner`, async () => {
    const spawnOne = (path: string): Contender => {
      const c = contender(path);
      everyone.push(c);
      return c;
    };
    const slots = [db, db, link, link].map(spawnOne);
    let fresh = [...slots];
    for (let round = 0; round < ROUNDS; round++) {
      for (const c of fresh) expect(await c.next()).toBe('ready');
      for (const c of slots) c.proc.stdin.write('go\n');
      const answers = await Promise.all(slots.map((c) => c.next()));
      const winners = slots.filter((_, k) => answers[k] === 'owner');
      expect({ round, answers, owners: winners.length }).toEqual({ round, answers, owners: 1 });
      const owner = winners[0]!;
      for (const a of answers) {
        // A refused process names the owner, unless it asked in the instant before the owner wrote its pid.
        if (a !== 'owner') expect(a).toMatch(new RegExp(`^refused (${owner.proc.pid}|undefined)$`));
      }
      // The owner dies holding the lock (no close, no exit handler); the others try again next round.
      owner.proc.kill('SIGKILL');
      await owner.exited;
      const replacement = spawnOne(owner.path);
      slots[slots.indexOf(owner)] = replacement;
      fresh = [replacement];
    }
  }, 600_000);

  it('refuses a second `crabwatt serve` through a symlink, naming the owner; after a kill -9 of the owner the next one runs', async () => {
    const owner = await startServe({ args: ['--device', 'sim', '--db', db] });
    try {
      const refused = await startServe({ args: ['--device', 'sim', '--db', link] }).then(
        (second) => second.stop().then(() => 'started a second writer'),
        (err: Error) => err.message,
      );
      expect(refused).toMatch(new RegExp(`in use by another crabwatt process \\(pid ${owner.pid}`));
    } finally {
      await owner.kill9();
    }
    const next = await startServe({ args: ['--device', 'sim', '--db', link] });
    try {
      // It writes: windows arrive through the API of the process that took the lock over.
      await until(async () => {
        const { devices } = await getJson<{ devices: { counters: { windows: number } }[] }>(`${next.url}/api/devices`);
        return devices.some((d) => d.counters.windows > 0) ? true : undefined;
      }, 200);
    } finally {
      expect(await next.stop()).toBe(0);
    }
  }, 120_000);
});
