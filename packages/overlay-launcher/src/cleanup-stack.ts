/**
 * A LIFO list of cleanup steps (unmount overlay, close the FUSE mount, remove state), run once on
 * success, failure or a signal. Signals are hooked once per process: while a container runs, its
 * launcher intercepts them (forwarding to podman, then cleaning up in order); otherwise a signal
 * runs the stack and exits with 128 + the signal number.
 */
import { constants } from "node:os";

export interface CleanupOutcome {
  label: string;
  ok: boolean;
  error?: string;
}

export interface CleanupHandle {
  remove(): void;
  run(): Promise<CleanupOutcome | undefined>;
}

export class CleanupStack {
  private steps: { label: string; fn: () => unknown }[] = [];
  private inflight = new Set<Promise<CleanupOutcome>>();

  get size(): number {
    return this.steps.length;
  }

  /**
   * Adds a step. `remove()` drops it unrun; `run()` runs it now if it is still pending (so a
   * normal exit path and a signal never both run it).
   */
  push(label: string, fn: () => unknown): CleanupHandle {
    const step = { label, fn };
    this.steps.push(step);
    const take = (): boolean => {
      const before = this.steps.length;
      this.steps = this.steps.filter((s) => s !== step);
      return this.steps.length < before;
    };
    return {
      remove: () => void take(),
      run: async () => (take() ? this.track(runStep(step)) : undefined),
    };
  }

  /**
   * Runs every pending step, last pushed first; a failing step does not stop the others. Also
   * waits for steps already running through their handle (a signal during a normal cleanup must
   * not exit the process halfway through an unmount).
   */
  async run(): Promise<CleanupOutcome[]> {
    const out: CleanupOutcome[] = [];
    while (this.steps.length > 0) out.push(await this.track(runStep(this.steps.pop()!)));
    await Promise.all([...this.inflight]);
    return out;
  }

  private async track(p: Promise<CleanupOutcome>): Promise<CleanupOutcome> {
    this.inflight.add(p);
    try {
      return await p;
    } finally {
      this.inflight.delete(p);
    }
  }
}

async function runStep(step: { label: string; fn: () => unknown }): Promise<CleanupOutcome> {
  try {
    await step.fn();
    return { label: step.label, ok: true };
  } catch (err) {
    return { label: step.label, ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}

/** The process-wide stack the CLI registers its FUSE unmount on, and the launcher its overlay. */
export const processCleanup = new CleanupStack();

export type SignalInterceptor = (signal: NodeJS.Signals) => void;
const interceptors: SignalInterceptor[] = [];
let hooked = false;

export const HOOKED_SIGNALS: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/**
 * Installs the signal handlers once (later calls do nothing). Without an interceptor a signal runs
 * `stack` and exits 128+N; `onCleanup` sees the outcomes first (e.g. to log failures).
 */
export function hookProcessSignals(
  opts: {
    stack?: CleanupStack;
    onCleanup?: (signal: NodeJS.Signals, outcomes: CleanupOutcome[]) => void;
    exit?: (code: number) => void;
    /**
     * the same signal again within this many ms is the same request, not a second one ("kill now"): a
     * process that another passes signals to (rootless lazypull inside `podman unshare`) gets a signal
     * sent to the whole process group twice
     */
    sameSignalWithinMs?: number;
  } = {},
): void {
  if (hooked) return;
  hooked = true;
  const stack = opts.stack ?? processCleanup;
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  let cleaning = false;
  let last: { sig: NodeJS.Signals; at: number } | undefined;
  for (const sig of HOOKED_SIGNALS) {
    process.on(sig, () => {
      const now = Date.now();
      if (opts.sameSignalWithinMs && last?.sig === sig && now - last.at < opts.sameSignalWithinMs) return;
      last = { sig, at: now };
      const top = interceptors[interceptors.length - 1];
      if (top) return top(sig);
      if (cleaning) return;
      cleaning = true;
      void stack.run().then((outcomes) => {
        opts.onCleanup?.(sig, outcomes);
        exit(128 + (constants.signals[sig] ?? 0));
      });
    });
  }
}

/** While registered, hooked signals go to `fn` instead of ending the process. Returns the unregister. */
export function interceptSignals(fn: SignalInterceptor): () => void {
  interceptors.push(fn);
  return () => {
    const i = interceptors.lastIndexOf(fn);
    if (i >= 0) interceptors.splice(i, 1);
  };
}
