// Starting serve against what a user gets wrong: a taken port, a path that is no serial device, a port that
// sends only garbage. A failed start must change nothing (no database file, no device row); a garbage port
// must be visible in /api/devices, not silently empty.

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Store } from '../../server/store/store.ts';
import { getJson, runCli, scratchDir, startServe, until, type ServeProcess } from './serve-process.ts';

interface DevicesJson {
  devices: { id: string; path: string | null; state: string; health: { state: string; detail: string }; counters: { bytes: number; frames: number; rejected: number } }[];
}

/** A pseudo-terminal whose other side writes the same non-frame line (zero-delimited) every 20 ms. */
const GARBAGE_PORT = `
import os, sys, time, tty, select
master, slave = os.openpty()
tty.setraw(slave)
print(os.ttyname(slave), flush=True)
os.set_blocking(master, False)
while not select.select([0], [], [], 0.02)[0]:
    try:
        os.write(master, b'AT+GMR\\r\\nOK garbage \\x01\\x02\\x03\\x00')
    except BlockingIOError:
        pass
    try:
        os.read(master, 4096)
    except (BlockingIOError, OSError):
        pass
`;

function occupy(): Promise<{ server: Server; port: number }> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port }));
  });
}

describe('a failed start changes nothing', () => {
  let scratch: ReturnType<typeof scratchDir>;
  beforeEach(() => (scratch = scratchDir()));
  afterEach(() => scratch.remove());

  it('a listen address in use: exit 1, one line, no database created', async () => {
    const { server, port } = await occupy();
    try {
      const run = await runCli(['serve', '--device', 'sim', '--db', join(scratch.dir, 'new.sqlite'), '--listen', `127.0.0.1:${port}`]);
      expect(run.stderr).toBe(`crabwatt serve: 127.0.0.1:${port} is in use: choose another with --listen HOST:PORT\n`);
      expect(run.code).toBe(1);
      expect(readdirSync(scratch.dir)).toEqual([]);
    } finally {
      server.close();
    }
  });

  it('a listen address in use: an existing database gets no device row and no epoch', async () => {
    const db = join(scratch.dir, 'old.sqlite');
    Store.open(db).close();
    const before = readdirSync(scratch.dir).sort();
    const { server, port } = await occupy();
    try {
      const run = await runCli(['serve', '--device', 'sim', '--db', db, '--listen', `127.0.0.1:${port}`]);
      expect(run.code).toBe(1);
    } finally {
      server.close();
    }
    const store = Store.open(db, { readonly: true });
    try {
      expect(store.db.prepare('SELECT count(*) FROM devices').pluck().get()).toBe(0);
      expect(store.db.prepare('SELECT count(*) FROM epochs').pluck().get()).toBe(0);
    } finally {
      store.close();
    }
    expect(readdirSync(scratch.dir).filter((f) => !f.endsWith('-wal') && !f.endsWith('-shm')).sort()).toEqual(
      before.filter((f) => !f.endsWith('-wal') && !f.endsWith('-shm')),
    );
  });

  it.each([
    ['/dev/null', 'a character device that is not a terminal'],
    ['a regular file', 'it is a regular file'],
    ['a directory', 'it is a directory'],
  ])('--device %s: "is not a serial device", exit 1, no database', async (what, why) => {
    let path = what;
    if (what === 'a regular file') writeFileSync((path = join(scratch.dir, 'ttyFAKE')), 'not a tty\n');
    if (what === 'a directory') path = scratch.dir;
    const db = join(scratch.dir, 'db', 'x.sqlite');
    const run = await runCli(['serve', '--device', path, '--db', db, '--listen', '127.0.0.1:0']);
    expect(run.stderr).toBe(
      `crabwatt serve: ${path} is not a serial device (${why}): give the board's port, such as /dev/ttyACM0, or --device sim\n`,
    );
    expect(run.code).toBe(1);
    expect(readdirSync(scratch.dir)).toEqual(what === 'a regular file' ? ['ttyFAKE'] : []);
  });

  it('--device PATH that does not exist: exit 1, no database', async () => {
    const run = await runCli(['serve', '--device', join(scratch.dir, 'ttyACM9'), '--db', join(scratch.dir, 'x.sqlite'), '--listen', '127.0.0.1:0']);
    expect(run.stderr).toMatch(/ttyACM9 does not exist \(unplugged\?\)\n$/);
    expect(run.code).toBe(1);
    expect(readdirSync(scratch.dir)).toEqual([]);
  });
});

describe('a port that sends only garbage', () => {
  let scratch: ReturnType<typeof scratchDir>;
  let port: ChildProcessWithoutNullStreams | undefined;
  let serve: ServeProcess | undefined;
  beforeEach(() => (scratch = scratchDir()));
  afterEach(async () => {
    await serve?.stop();
    port?.stdin.end();
    scratch.remove();
  });

  it('shows in /api/devices with its bytes counted and health no_valid_frames', async () => {
    port = spawn('python3', ['-c', GARBAGE_PORT]);
    const path = await new Promise<string>((resolve) => createInterface({ input: port!.stdout }).once('line', resolve));
    serve = await startServe({ args: ['--device', path, '--db', join(scratch.dir, 'g.sqlite')] });
    const dev = await until(async () => {
      const { devices } = await getJson<DevicesJson>(`${serve!.url}/api/devices`);
      const d = devices.find((x) => x.path === path);
      return d && d.counters.bytes > 1000 ? d : undefined;
    });
    expect(dev.state).toBe('connected');
    expect(dev.health.state).toBe('no_valid_frames');
    expect(dev.health.detail).toMatch(/bytes received and none of them a crabwatt frame/);
    expect(dev.counters.frames).toBe(0);
    expect(dev.counters.rejected).toBeGreaterThan(10);
  });
});
