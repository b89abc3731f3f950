import { sleep } from "@lazypull/host";

/**
 * On-demand reads of a whole mount, as background fetching sees them. Background work waits until no
 * read is pending **and** none has begun or ended for `silenceMs`: a container that is starting reads
 * in bursts with short gaps (exec, dynamic loader, imports), and a 4 MiB background range slipped into
 * such a gap holds the link while the next demand read waits behind it. One gate per mount, shared by
 * all its layers, so a read in one layer holds back background work in every other.
 */
export class DemandGate {
  private pending = 0;
  private lastActivity: number;
  private idleWaiters: (() => void)[] = [];

  /** `silenceMs` 0: only wait for pending reads (the behaviour before the gate) */
  constructor(readonly silenceMs: number, private readonly now: () => number = () => performance.now()) {
    // a layer is opened because something is about to read it: count that as activity
    this.lastActivity = now();
  }

  /** Runs `fn` as an on-demand read. */
  async demand<T>(fn: () => Promise<T>): Promise<T> {
    this.pending += 1;
    this.lastActivity = this.now();
    try {
      return await fn();
    } finally {
      this.pending -= 1;
      this.lastActivity = this.now();
      if (this.pending === 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const w of waiters) w();
      }
    }
  }

  /** Counts as activity without a read (a layer just opened, a lookup). */
  touch(): void {
    this.lastActivity = this.now();
  }

  /** Resolves once no read is pending and the last one ended `silenceMs` ago (or the signal aborts). */
  async whenQuiet(signal?: AbortSignal): Promise<void> {
    for (;;) {
      if (signal?.aborted) return;
      if (this.pending > 0) {
        await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
        continue;
      }
      const wait = this.lastActivity + this.silenceMs - this.now();
      if (wait <= 0) return;
      await sleep(wait, signal);
    }
  }

  /** Resolves once no read is pending (no silence): for a background request that is about to start. */
  whenIdle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}
