// Opening the database file: the single-writer lock, the connection's pragmas, the schema (migrated for a
// writer, checked for a reader), and the errors a user can act on.

import Database from 'better-sqlite3';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { acquireLock, databaseLockPath, type ProcessLock } from './lock.ts';
import { migrate, SCHEMA_VERSION, SchemaTooNewError } from './schema.ts';
import { StoreError, type StoreOptions } from './types.ts';

export interface OpenDatabase {
  db: Database.Database;
  lock: ProcessLock | undefined;
}

export function openDatabase(path: string, options: StoreOptions): OpenDatabase {
  const readonly = options.readonly ?? false;
  let lock: ProcessLock | undefined;
  let db: Database.Database | undefined;
  try {
    if (!readonly) mkdirSync(dirname(resolve(path)), { recursive: true });
    lock = options.lock === false || readonly ? undefined : acquireLock(databaseLockPath(path), `database ${path}`);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Any error of the file system (EACCES, EROFS, ENOTDIR, ENOSPC, ENAMETOOLONG …) creating the folder or the
    // lock's pid file, or SQLite's refusal to open the lock file itself, is the place's, not a bug.
    const sqliteRefused = ['SQLITE_CANTOPEN', 'SQLITE_READONLY', 'SQLITE_PERM'];
    if (typeof code === 'string' && ((err as NodeJS.ErrnoException).syscall !== undefined || sqliteRefused.includes(code))) {
      throw new StoreError(`cannot write next to ${path} (${code}): choose a writable place with --db FILE`);
    }
    throw err;
  }
  try {
    db = new Database(path, { readonly, fileMustExist: readonly });
    db.pragma('busy_timeout = 5000');
    if (!readonly) {
      db.pragma('journal_mode = WAL');
      // NORMAL in WAL mode: a commit is durable against process death (kill -9); only an OS crash or power
      // loss can drop the last transactions, and never corrupts.
      db.pragma('synchronous = NORMAL');
      migrate(db);
    } else {
      const version = Number(db.pragma('user_version', { simple: true }));
      // A reader reads every schema from 1 on (an older one has no packs: its rows are read instead).
      if (version < 1 || version > SCHEMA_VERSION) {
        throw new StoreError(
          `database ${path} has schema version ${version}, this crabwatt reads ${SCHEMA_VERSION}: ` +
            (version < SCHEMA_VERSION ? 'run `crabwatt serve` on it once to upgrade it' : 'upgrade crabwatt'),
        );
      }
    }
  } catch (err) {
    lock?.release();
    db?.close();
    const code = (err as { code?: string }).code;
    // better-sqlite3 refuses a missing folder itself, with a TypeError, before SQLite would say SQLITE_CANTOPEN.
    if (readonly && (code === 'SQLITE_CANTOPEN' || !existsSync(path))) {
      throw new StoreError(`cannot open database ${path}: no such file (run \`crabwatt serve --db ${path}\` first)`);
    }
    if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
      throw new StoreError(`${path} is not a crabwatt database or is damaged (${(err as Error).message}): move it aside or choose another --db`);
    }
    // Whatever else SQLite says while opening (a folder, no permission, a full disk, a read-only place) is about
    // the file the user named, not a bug.
    if (typeof code === 'string' && code.startsWith('SQLITE_')) {
      throw new StoreError(`cannot open database ${path} (${(err as Error).message}): choose another --db FILE`);
    }
    if (err instanceof SchemaTooNewError) throw new StoreError(err.message);
    throw err;
  }
  return { db, lock };
}
