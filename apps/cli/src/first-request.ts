import { subscribe, unsubscribe } from "node:diagnostics_channel";

const SENT = "undici:client:sendHeaders";

/**
 * Runs `fn` once the first HTTP request of this process (to a registry, or to lazypulld) is on the
 * wire, or after `fallbackMs` if none goes out, or when `now()` says not to wait any longer: work that
 * would otherwise delay that request — loading an addon, a child process reading from disk — then
 * overlaps its answer's round trip instead. `done` resolves once `fn` has run.
 */
export function whenFirstRequestSent(fn: () => void, fallbackMs = 200): { done: Promise<void>; now(): void } {
  let ran = false;
  let resolve!: () => void;
  const done = new Promise<void>((r) => (resolve = r));
  const run = () => {
    if (ran) return;
    ran = true;
    unsubscribe(SENT, onSent);
    clearTimeout(timer);
    fn();
    resolve();
  };
  // after the write, not inside undici's publish
  const onSent = () => setImmediate(run);
  subscribe(SENT, onSent);
  const timer = setTimeout(run, fallbackMs);
  timer.unref();
  return { done, now: run };
}
