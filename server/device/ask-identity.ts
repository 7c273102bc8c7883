// Asking a newly connected device who it is, until it says. A host used to send one cmd_identify per
// connection: when that one was lost (a device whose transmit queue was full dropped the answer, or a
// host too busy to read it within the request timeout gave up), the device stayed anonymous for the
// whole connection and none of its windows were stored. Now the question is repeated, backing off,
// until an identify frame arrives or the connection ends.

export interface AskIdentityDelays {
  /** Wait before asking the second time, ms; each later wait doubles, up to maxMs. */
  firstMs: number;
  maxMs: number;
}

export const DEFAULT_ASK_IDENTITY_DELAYS: AskIdentityDelays = { firstMs: 2000, maxMs: 30_000 };

export class IdentityAsker {
  private timer: NodeJS.Timeout | undefined;
  private tries = 0;
  private waiting = false;

  /**
   * `ask()` sends cmd_identify (its promise settles with the ack); `onFirstFailure` hears why the first
   * question of a connection failed (later failures would repeat it).
   */
  constructor(
    private readonly ask: () => Promise<unknown>,
    private readonly onFirstFailure: (error: unknown) => void,
    private readonly delays: AskIdentityDelays = DEFAULT_ASK_IDENTITY_DELAYS,
  ) {}

  /** A new connection: ask now, and again until identified() or stop(). */
  start(): void {
    this.stop();
    this.waiting = true;
    this.tries = 0;
    this.attempt();
  }

  /** An identify frame came: stop asking. */
  identified(): void {
    this.stop();
  }

  /** The connection ended (or the link closed). */
  stop(): void {
    this.waiting = false;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  get asking(): boolean {
    return this.waiting;
  }

  private attempt(): void {
    if (!this.waiting) return;
    const first = this.tries === 0;
    const wait = Math.min(this.delays.maxMs, this.delays.firstMs * 2 ** this.tries);
    this.tries++;
    this.ask().catch((error: unknown) => {
      if (first && this.waiting) this.onFirstFailure(error);
    });
    // The next question is timed from this one, not from its ack: an ack can come without the identify.
    this.timer = setTimeout(() => this.attempt(), wait);
    this.timer.unref?.();
  }
}
