import { describeError } from "@lazypull/errors";
import { cleanupLeftovers, loadHostConfig } from "@lazypull/overlay-launcher";
import type { Logger } from "pino";

/**
 * Cleans up after `lazypull mount`/`run` processes that were killed: their overlay mounts, FUSE mounts
 * and state, found through the CLI's state root (`$LAZYPULL_STATE_DIR` or the host config's), exactly
 * as the CLI's next `mount`/`run` would. At daemon start, so a host that only restarts lazypulld is
 * left clean too. Never fatal: the daemon serves either way. A rootless daemon runs inside the user's
 * `podman unshare`, as that user's CLI does, so the host config's defaults name the same state root
 * (`$XDG_RUNTIME_DIR/lazypull`) and the mounts are the ones this namespace sees.
 */
export async function cleanCliLeftovers(log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  try {
    const stateDir = env.LAZYPULL_STATE_DIR;
    const host = await loadHostConfig({ env, ...(stateDir ? { overrides: { stateRoot: stateDir } } : {}) });
    log.debug({ stateRoot: host.stateRoot }, "looking for what dead lazypull processes left");
    for (const r of await cleanupLeftovers(host)) {
      log.warn({ ownerPid: r.ownerPid, unmounted: r.unmounted, errors: r.errors }, "cleaned up after a dead lazypull process");
    }
  } catch (err) {
    log.warn({ err: describeError(err) }, "could not check for what dead lazypull processes left");
  }
}
