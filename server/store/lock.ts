// Process locks: one host process per database and one per serial device.
//
// The lock is an OS lock, not the existence of a file: a small SQLite file beside the thing locked, held in an
// open `BEGIN EXCLUSIVE` transaction (with `locking_mode=EXCLUSIVE`). SQLite takes POSIX advisory locks on it,
// which the kernel grants to one process at a time (atomically, per inode) and drops when the process dies,
// kill -9 included: there is no stale lock to detect and no takeover to race. The lock file is never deleted —
// a process could hold the lock on an unlinked inode while the next one creates a fresh file and locks that.
// Its presence means nothing; only the lock on it does.
//
// Why not lock the database itself: an exclusive lock on it would also shut out readers (`crabwatt export`,
// the API benchmark read while `serve` writes). Why SQLite: it is the one way to an fcntl lock from Node
// without a native addon of our own, and better-sqlite3 is already loaded.
//
// The owner writes its pid to `<lock>.pid` once it holds the lock, so a refused process can name it; that file
// is information only (it may be missing or old while an owner starts).

import Database from 'better-sqlite3';
import { mkdirSync, readFileSync, readlinkSync, realpathSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';

export class LockHeldError extends Error {
  override readonly name = 'LockHeldError';
  constructor(
    readonly what: string,
    readonly lockPath: string,
    /** The holder's pid as it recorded it; undefined while the holder is still starting. */
    readonly ownerPid: number | undefined,
  ) {
    super(
      `${what} is in use by another crabwatt process (${ownerPid === undefined ? 'pid not known yet: it is starting' : `pid ${ownerPid}`}, ` +
        `lock ${lockPath}). Stop that process first, or use a different one.`,
    );
  }
}

export interface ProcessLock {
  readonly path: string;
  release(): void;
}

function ownerFile(lockPath: string): string {
  return `${lockPath}.pid`;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid the owner recorded, if that process lives (a killed owner's file stays until the next owner's). */
function readOwnerPid(lockPath: string): number | undefined {
  let pid: unknown;
  try {
    pid = (JSON.parse(readFileSync(ownerFile(lockPath), 'utf8')) as { pid?: unknown }).pid;
  } catch {
    return undefined; // not written yet, or being replaced
  }
  return typeof pid === 'number' && Number.isSafeInteger(pid) && pid > 0 && processAlive(pid) ? pid : undefined;
}

function isBusy(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
}

/**
 * Take the lock at `lockPath` for `what` (a human description used in the error message).
 * Throws LockHeldError when another process (or another lock in this one) holds it.
 */
export function acquireLock(lockPath: string, what: string): ProcessLock {
  mkdirSync(dirname(lockPath), { recursive: true });
  // timeout 0: a held lock is an answer, not something to wait for.
  const db = new Database(lockPath, { timeout: 0 });
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE');
  } catch (err) {
    db.close();
    if (isBusy(err)) throw new LockHeldError(what, lockPath, readOwnerPid(lockPath));
    throw err;
  }
  const owner = ownerFile(lockPath);
  const temp = join(dirname(owner), `.${basename(owner)}.${process.pid}`);
  try {
    writeFileSync(temp, JSON.stringify({ pid: process.pid, what }));
    renameSync(temp, owner);
  } catch (err) {
    db.close();
    throw err;
  }
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    process.off('exit', release);
    // The pid file first: once the lock is free, another owner may write its own.
    if (readOwnerPid(lockPath) === process.pid) {
      try {
        unlinkSync(owner);
      } catch {
        // already gone: nothing to tidy
      }
    }
    db.close(); // ends the transaction: the OS lock goes with the connection
  };
  process.on('exit', release);
  return { path: lockPath, release };
}

/**
 * The real path of a file that may not exist yet: symlinks and `..` resolved, a dangling symlink followed to
 * where the file will be created (SQLite creates it there), else the real folder and the name.
 */
function realPathOf(path: string): string {
  let p = resolve(path);
  for (let hops = 0; hops < 40; hops++) {
    try {
      return realpathSync(p);
    } catch {
      let target: string;
      try {
        target = readlinkSync(p);
      } catch {
        break; // not a symlink: the file itself is missing
      }
      p = resolve(dirname(p), target);
    }
  }
  try {
    return join(realpathSync(dirname(p)), basename(p));
  } catch {
    return p;
  }
}

/**
 * The lock beside a database file, keyed by its real path: a symlink or a second spelling of the path leads
 * to the same lock as the file itself.
 */
export function databaseLockPath(dbPath: string): string {
  return `${realPathOf(dbPath)}.owner-lock`;
}

/**
 * A lock per serial device, in the system's temporary directory. Keyed by the real path, so
 * /dev/serial/by-id/… and the /dev/ttyACM0 it points to are one device.
 */
export function deviceLockPath(devicePath: string, lockDir = join(tmpdir(), 'crabwatt-locks')): string {
  const key = realPathOf(devicePath).replace(/[^A-Za-z0-9._-]/g, '_');
  return join(lockDir, `${key}.owner-lock`);
}
