import { describeError, hasCode } from "@lazypull/errors";
import { sleep } from "@lazypull/host";
import type { Logger } from "pino";
import { FuseFsError } from "../errors.js";
import type { FetchCounters } from "./counters.js";

export interface RetryPolicy {
  /** attempts in all (first try included) */
  attempts: number;
  /** delay before the second attempt; doubles each time */
  delayMs: number;
  /** an attempt that takes longer is aborted (on-demand fetches only; background ones may be slow) */
  attemptTimeoutMs?: number;
}

export const defaultRetryPolicy: RetryPolicy = { attempts: 4, delayMs: 250, attemptTimeoutMs: 25_000 };

/**
 * Runs one attempt with a signal that aborts when `signal` does or after `timeoutMs`. Not
 * `AbortSignal.any([signal, AbortSignal.timeout(ms)])`: Node may garbage-collect those signals before
 * the timeout fires, and the attempt then hangs forever (seen in CI). Here the timer holds the
 * controller, and both are released when the attempt ends.
 */
export async function withAttemptSignal<T>(signal: AbortSignal, timeoutMs: number | undefined, fn: (s: AbortSignal) => Promise<T>): Promise<T> {
  if (!timeoutMs) return fn(signal);
  const ac = new AbortController();
  const onAbort = () => ac.abort(signal.reason);
  if (signal.aborted) onAbort();
  else signal.addEventListener("abort", onAbort, { once: true });
  const timer = setTimeout(() => ac.abort(new DOMException(`attempt timed out after ${timeoutMs} ms`, "TimeoutError")), timeoutMs);
  try {
    return await fn(ac.signal);
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", onAbort);
  }
}

/**
 * Failures another attempt cannot change: the layer's own bytes are unusable, or the registry answered
 * for sure (registry-client has already retried what a registry can recover from).
 */
const FINAL_CODES = new Set(["FUSEFS_BAD_LAYER", "REGISTRY_UNAUTHORIZED", "REGISTRY_DENIED", "REGISTRY_NOT_FOUND", "REGISTRY_RANGE_NOT_SATISFIABLE"]);

export function isFinal(err: unknown): boolean {
  return hasCode(err) && FINAL_CODES.has(err.code);
}

/**
 * Runs `attempt` until it succeeds or fails for good, with bounded exponential backoff. Every failure is counted and
 * logged; the final one becomes `FUSEFS_FETCH_FAILED` (EIO to a FUSE reader) with the cause attached.
 */
export async function withRetries<T>(
  what: { digest: string; offset: number; length: number },
  policy: RetryPolicy,
  ctx: { counters: FetchCounters; log: Logger; signal: AbortSignal },
  attempt: () => Promise<T>,
): Promise<T> {
  let lastErr: unknown;
  for (let i = 0; i < policy.attempts; i++) {
    if (ctx.signal.aborted) break;
    try {
      return await attempt();
    } catch (err) {
      lastErr = err;
      if (ctx.signal.aborted) break;
      ctx.counters.noteError(describeError(err));
      ctx.log.warn({ err, ...what, attempt: i + 1, of: policy.attempts }, "blob range fetch failed");
      if (isFinal(err)) {
        throw new FuseFsError("FUSEFS_FETCH_FAILED", `bytes ${what.offset}+${what.length} of ${what.digest} failed: ${describeError(err)}`, { ...what, attempts: i + 1 }, { cause: err });
      }
      if (i + 1 < policy.attempts) await sleep(policy.delayMs * 2 ** i, ctx.signal);
    }
  }
  if (ctx.signal.aborted) {
    throw new FuseFsError("FUSEFS_CLOSED", `layer ${what.digest} was closed while fetching`, what, { cause: lastErr });
  }
  throw new FuseFsError(
    "FUSEFS_FETCH_FAILED",
    `bytes ${what.offset}+${what.length} of ${what.digest} failed after ${policy.attempts} attempts: ${describeError(lastErr)}`,
    { ...what, attempts: policy.attempts },
    { cause: lastErr },
  );
}
