import { FuseFsError } from "../errors.js";
import type { Priority } from "./chunk-store.js";

/**
 * Bytes all fetches of a process may hold at once (compressed range + inflated chunks, until they are
 * in the cache). Ordinary work stays far below it (a 4 MiB background range per layer, reads of
 * ≤ 128 KiB); it is what keeps an image whose landmark region, chunk sizes or compression ratios are
 * hostile from taking the process's memory with it.
 */
export const DEFAULT_FETCH_BUDGET_BYTES = 128 * 1024 * 1024;

interface Waiter {
  bytes: number;
  grant: () => void;
}

/**
 * A byte semaphore for fetches. On-demand waiters go before background ones; within a class, first
 * come first served. A request larger than the whole budget is clamped to it (it then runs alone).
 */
export class FetchBudget {
  private used = 0;
  private readonly queues: Record<Priority, Waiter[]> = { demand: [], background: [] };

  constructor(readonly capacity: number = DEFAULT_FETCH_BUDGET_BYTES) {
    if (!(Number.isSafeInteger(capacity) && capacity > 0)) throw new FuseFsError("FUSEFS_INVALID", `fetch budget must be a positive integer, got ${capacity}`, { capacity });
  }

  /** Waits until `bytes` fit, takes them, and returns the function that gives them back (once). */
  async acquire(bytesIn: number, prio: Priority): Promise<() => void> {
    const bytes = Math.max(0, Math.min(this.capacity, Math.ceil(bytesIn)));
    if (this.queues.demand.length === 0 && (prio === "demand" || this.queues.background.length === 0) && this.used + bytes <= this.capacity) {
      this.used += bytes;
    } else {
      await new Promise<void>((grant) => this.queues[prio].push({ bytes, grant }));
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used -= bytes;
      this.grantWaiting();
    };
  }

  private grantWaiting(): void {
    for (const q of [this.queues.demand, this.queues.background]) {
      while (q.length > 0 && this.used + q[0]!.bytes <= this.capacity) {
        const w = q.shift()!;
        this.used += w.bytes;
        w.grant();
      }
      // a waiting demand request keeps background ones waiting, however small they are
      if (q.length > 0) return;
    }
  }

  /** bytes held right now */
  get inUse(): number {
    return this.used;
  }
}

/** The budget every ChunkStore of the process shares unless given its own. */
export const processFetchBudget = new FetchBudget();
