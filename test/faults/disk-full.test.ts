// The database's filesystem fills up while serve ingests: a small tmpfs, filled by a file, then freed. The API
// must show the state, the log must say it once (not at every retry), and when space comes back ingest goes on
// with nothing that was queued lost or counted twice.
//
// Mounting needs root (CAP_SYS_ADMIN). Without it the test is skipped with the reason, except under CI=true,
// where it fails: CI runs as root, and a skipped fault test there would hide that it never ran.

import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { levelSums } from '../store/helpers.ts';
import { getJson, scratchDir, startServe, until, type ServeProcess } from './serve-process.ts';

interface DevicesJson {
  devices: { id: string; health: { state: string; detail: string }; counters: { frames: number; dropped: number } }[];
}

const isRoot = process.getuid?.() === 0;
const REASON = 'mounting a small tmpfs needs root: run the fault suite as root (as CI does) to exercise a full disk';
if (!isRoot && process.env['CI'] === 'true') throw new Error(`test/faults/disk-full.test.ts cannot run: ${REASON}`);

/** Writes zeros into `path` until the filesystem says ENOSPC. */
function fill(path: string): void {
  const fd = openSync(path, 'w');
  const block = Buffer.alloc(16 * 1024);
  try {
    for (;;) writeSync(fd, block);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
}

function one(db: Database.Database, sql: string): bigint {
  return BigInt((db.prepare(sql).pluck().safeIntegers(true).get() as bigint | null) ?? 0n);
}

/** Opens the database after serve stopped: intact, its counter the sum of windows and gaps; `more` checks on. */
function checkLedger(path: string, more: (db: Database.Database, total: bigint) => void = () => undefined): void {
  const d = new Database(path, { readonly: true });
  try {
    expect(d.pragma('integrity_check', { simple: true })).toBe('ok');
    const total = one(d, 'SELECT sum(total_nwh) FROM devices');
    expect(total).toBe(one(d, 'SELECT sum(energy_nwh) FROM windows') + one(d, 'SELECT sum(energy_nwh) FROM energy_gaps'));
    more(d, total);
  } finally {
    d.close();
  }
}

describe.skipIf(!isRoot)(`a full disk under serve (${isRoot ? 'tmpfs' : `skipped: ${REASON}`})`, () => {
  let scratch: ReturnType<typeof scratchDir>;
  let mnt: string;
  let serve: ServeProcess | undefined;
  beforeEach(() => {
    scratch = scratchDir();
    mnt = join(scratch.dir, 'mnt');
    mkdirSync(mnt);
    const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', mnt], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`mount -t tmpfs failed: ${r.stderr}`);
  });
  afterEach(async () => {
    if (serve) await serve.kill9();
    spawnSync('umount', [mnt]);
    scratch.remove();
  });

  /** serve on the tmpfs, ingesting; then a file fills the rest of it. Resolves with the device list and the filler. */
  async function serveThenFill(name: string) {
    const db = join(mnt, name);
    const running = await startServe({ args: ['--device', 'sim', '--db', db, '--speed', '4'] });
    serve = running;
    const devices = async () => (await getJson<DevicesJson>(`${running.url}/api/devices`)).devices.filter((d) => d.id !== '');
    await until(async () => ((await devices())[0]?.counters.frames ?? 0) > 20 || undefined);
    const filler = join(mnt, 'filler');
    fill(filler);
    return { serve: running, devices, filler, db };
  }

  it('stopped while the disk is full: says what could not be written and exits 1, the database intact', { timeout: 600_000 }, async () => {
    const { serve: running, devices, db } = await serveThenFill('stop.sqlite');
    await until(async () => (await devices()).find((d) => d.health.state === 'disk_full'));
    expect(await running.stop()).toBe(1);
    expect(running.stderr()).toMatch(/crabwatt serve: \d+ queued window\(s\) and gap\(s\) could not be written before exit: could not write to .*full/);
    expect(running.stderr()).not.toMatch(/a bug/);
    serve = undefined;
    checkLedger(db);
  });

  it('shows disk_full, logs it once, resumes by itself when space is freed, loses and doubles nothing', { timeout: 600_000 }, async () => {
    const { serve: running, devices, filler, db } = await serveThenFill('full.sqlite');
    const full = await until(async () => (await devices()).find((d) => d.health.state === 'disk_full'));
    expect(full.health.detail).toMatch(/is full: free some space; ingest resumes by itself/);
    // Stay full for a while, many frames and several retries long, before freeing the space.
    await until(async () => ((await devices())[0]!.counters.frames > full.counters.frames + 60) || undefined);
    expect((await devices())[0]!.health.state).toBe('disk_full');
    rmSync(filler);
    await until(async () => ((await devices())[0]!.health.state === 'ok') || undefined);
    const framesAtRecovery = (await devices())[0]!.counters.frames;
    await until(async () => ((await devices())[0]!.counters.frames > framesAtRecovery + 20) || undefined);
    expect((await devices())[0]!.counters.dropped).toBe(0);

    const log = running.stderr();
    expect(log.match(/ingest is held up/g)?.length, log).toBe(1);
    expect(log.match(/writing to .* again/g)?.length, log).toBe(1);
    expect(await running.stop()).toBe(0);
    serve = undefined;

    checkLedger(db, (d, total) => {
      for (const ms of [1000, 60_000, 900_000, 3_600_000, 86_400_000]) expect(levelSums(d, ms).energyNwh).toBe(total);
      // Nothing queued was lost: every window starts where the one before it in its epoch ended.
      const holes = one(
        d,
        `SELECT count(*) FROM windows w WHERE w.end_index - w.samples > (SELECT min(end_index) FROM windows f WHERE f.epoch = w.epoch)
           AND NOT EXISTS (SELECT 1 FROM windows p WHERE p.epoch = w.epoch AND p.end_index = w.end_index - w.samples)`,
      );
      expect(holes).toBe(0n);
      expect(one(d, "SELECT count(*) FROM energy_gaps WHERE reason = 'windows_lost'")).toBe(0n);
    });
  });
});
