// Process locks: one host process per database and one per serial device.
//
// Why a lock file and not SQLite's `locking_mode=EXCLUSIVE`: an exclusive SQLite lock in WAL mode also
// shuts out readers, yet `crabwatt export` and the API benchmark must be able to read the database while
// `serve` writes it. It would also surface as a bare SQLITE_BUSY at the first write rather than a message
// naming the process that holds it. The lock file is created with O_EXCL (atomic on local filesystems),
// holds the owner's pid and host name, and a lock left by a dead process (kill -9, power loss) is detected
// by probing the pid and taken over.

import { closeSync, mkdirSync, openSync, readFileSync, realpathSync, unlinkSync, writeSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

export class LockHeldError extends Error {
  override readonly name = 'LockHeldError';
  constructor(
    readonly what: string,
    readonly lockPath: string,
    readonly ownerPid: number,
  ) {
    super(
      `${what} is in use by another crabwatt process (pid ${ownerPid}, lock file ${lockPath}). ` +
        `Stop that process first, or use a different one; if no such process exists, delete the lock file.`,
    );
  }
}

export interface ProcessLock {
  readonly path: string;
  release(): void;
}

interface LockContent {
  pid: number;
  host: string;
  what: string;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else — still a live owner.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readOwner(path: string): LockContent | undefined {
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<LockContent>;
    if (typeof parsed.pid === 'number' && typeof parsed.host === 'string') {
      return { pid: parsed.pid, host: parsed.host, what: String(parsed.what ?? '') };
    }
  } catch {
    // unreadable or half-written: treated as stale below
  }
  return undefined;
}

/**
 * Take the lock at `lockPath` for `what` (a human description used in the error message).
 * Throws LockHeldError when a live process holds it.
 */
export function acquireLock(lockPath: string, what: string): ProcessLock {
  mkdirSync(dirname(lockPath), { recursive: true });
  const content: LockContent = { pid: process.pid, host: hostname(), what };
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      fd = openSync(lockPath, 'wx', 0o644);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = readOwner(lockPath);
      // A lock from another host (shared filesystem) cannot be probed: respect it.
      const live =
        owner !== undefined &&
        (owner.host !== content.host || (owner.pid !== process.pid && processAlive(owner.pid)));
      if (live) throw new LockHeldError(what, lockPath, owner.pid);
      if (owner?.pid === process.pid) throw new LockHeldError(what, lockPath, owner.pid);
      try {
        unlinkSync(lockPath);
      } catch (unlinkErr) {
        if ((unlinkErr as NodeJS.ErrnoException).code !== 'ENOENT') throw unlinkErr;
      }
      continue;
    }
    try {
      writeSync(fd, JSON.stringify(content));
    } finally {
      closeSync(fd);
    }
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      process.off('exit', release);
      const owner = readOwner(lockPath);
      if (owner?.pid === process.pid && owner.host === content.host) {
        try {
          unlinkSync(lockPath);
        } catch {
          // already gone: nothing to release
        }
      }
    };
    process.on('exit', release);
    return { path: lockPath, release };
  }
  throw new Error(`could not take the lock ${lockPath}: it keeps reappearing; is another process starting right now?`);
}

/** The lock file beside a database file. */
export function databaseLockPath(dbPath: string): string {
  return `${resolve(dbPath)}.lock`;
}

/**
 * A lock file per serial device, in the system's temporary directory. Keyed by the real path, so
 * /dev/serial/by-id/… and the /dev/ttyACM0 it points to are one device.
 */
export function deviceLockPath(devicePath: string, lockDir = join(tmpdir(), 'crabwatt-locks')): string {
  let real = resolve(devicePath);
  try {
    real = realpathSync(devicePath);
  } catch {
    // not there (yet): the open will fail with its own message
  }
  const key = real.replace(/[^A-Za-z0-9._-]/g, '_');
  return join(lockDir, `${key}.lock`);
}
