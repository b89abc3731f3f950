import { setTimeout as timeout } from "node:timers/promises";

/**
 * Waits `ms`, or less when `signal` aborts — and then resolves rather than rejects: for loops that
 * check the signal themselves after waking (background fetching, polling). Node's timer removes its
 * abort listener when it ends, so a long-lived signal collects none.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return timeout(ms, undefined, signal ? { signal } : {}).catch(() => undefined);
}

/**
 * Waits `ms`; when `signal` aborts first, rejects with the signal's own reason (not node's generic
 * AbortError), so the caller's error says why it was cancelled: for retry backoff inside a request.
 */
export async function delay(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await timeout(ms, undefined, signal ? { signal } : {});
  } catch (err) {
    signal?.throwIfAborted();
    throw err;
  }
}
