// Whether the store's transactions are getting through. A failed flush keeps its batch queued (nothing is
// dropped or booked twice: the rolled-back transaction is written again, whole, with what came since), and the
// state changes to 'disk_full' or 'failing'; the first flush that succeeds turns it back to 'ok'. Listeners hear
// each change once, not each failed retry, so a full disk is one log line, not two a second.

/** How long a failing store waits before it tries again (a retry writes the whole, growing queue). */
export const RETRY_MS = 2000;

/**
 * Windows kept in memory while writes fail (~14 MB; 3.6 h of 200 ms windows). Beyond it ingest drops new windows
 * and counts them; the device's energy snapshots book their energy as a gap once writes succeed again.
 */
export const MAX_QUEUED_WINDOWS = 65_536;

export type WriteState = 'ok' | 'disk_full' | 'failing';

export interface WriteHealth {
  state: WriteState;
  /** What failed and what to do, '' when ok. */
  detail: string;
  /** When the current state began (Unix ms). */
  sinceMs: number;
  /** Flushes that failed since the last one that succeeded. */
  failedFlushes: number;
}

/** SQLite's and the OS's words for "no space left" (better-sqlite3 passes SQLite's extended codes). */
function isDiskFull(err: unknown): boolean {
  const code = String((err as { code?: unknown }).code ?? '');
  return code === 'SQLITE_FULL' || code === 'ENOSPC' || /database or disk is full|no space left/i.test(String((err as Error).message));
}

export class WriteHealthTracker {
  private current: WriteHealth;

  constructor(
    private readonly path: string,
    private readonly onChange: (health: WriteHealth) => void,
    nowMs: number,
  ) {
    this.current = { state: 'ok', detail: '', sinceMs: nowMs, failedFlushes: 0 };
  }

  get health(): WriteHealth {
    return { ...this.current };
  }

  get failing(): boolean {
    return this.current.state !== 'ok';
  }

  failed(err: unknown, queuedWindows: number, nowMs: number): void {
    const full = isDiskFull(err);
    const state: WriteState = full ? 'disk_full' : 'failing';
    const detail = full
      ? `the disk holding ${this.path} is full: free some space; ingest resumes by itself (windows wait in memory meanwhile, ${queuedWindows} now)`
      : `could not write to ${this.path}: ${(err as Error).message}; retrying every ${RETRY_MS / 1000} s`;
    const failedFlushes = this.current.failedFlushes + 1;
    if (state === this.current.state) {
      this.current.failedFlushes = failedFlushes;
      return;
    }
    this.current = { state, detail, sinceMs: nowMs, failedFlushes };
    this.onChange(this.health);
  }

  succeeded(nowMs: number): void {
    if (this.current.state === 'ok') return;
    this.current = { state: 'ok', detail: '', sinceMs: nowMs, failedFlushes: 0 };
    this.onChange(this.health);
  }
}
