/**
 * Unmounts on SIGINT/SIGTERM (and SIGHUP). The library never exits the process: after closing, the
 * default `onSignal` removes these handlers and re-raises the signal so the process ends as it would
 * have; an app passes its own `onSignal` to decide instead. Returns a function that removes the handlers.
 */
export function unmountOnSignals(
  targets: { close(): Promise<void> } | { close(): Promise<void> }[],
  opts: { signals?: NodeJS.Signals[]; onSignal?: (signal: NodeJS.Signals) => void; onError?: (err: unknown) => void } = {},
): () => void {
  const list = Array.isArray(targets) ? targets : [targets];
  const signals = opts.signals ?? ["SIGINT", "SIGTERM", "SIGHUP"];
  let closing = false;
  const remove = () => {
    for (const s of signals) process.removeListener(s, handler);
  };
  function handler(signal: NodeJS.Signals) {
    if (closing) return;
    closing = true;
    void Promise.allSettled(list.map((t) => t.close())).then((results) => {
      for (const r of results) if (r.status === "rejected") opts.onError?.(r.reason);
      remove();
      if (opts.onSignal) opts.onSignal(signal);
      else process.kill(process.pid, signal);
    });
  }
  for (const s of signals) process.on(s, handler);
  return remove;
}
