import type { HostConfig } from "./config.js";
import { sleep } from "@lazypull/host";
import { exec } from "./exec.js";

export interface RemoveContainerResult {
  /** the container no longer exists */
  gone: boolean;
  /** why it may still exist (podman's last words) */
  error?: string;
}

/**
 * `podman rm --force` until the container is gone. A leftover of a killed `lazypull run` is still being
 * served by its orphaned `podman run --rm` and conmon, which remove it too: while one of them holds the
 * container's lock our `rm` can fail, and the container then outlived cleanup (seen in CI under load).
 */
export async function removeContainer(
  podman: Pick<HostConfig["podman"], "binary" | "globalArgs">,
  name: string,
  opts: { attempts?: number; delayMs?: number } = {},
): Promise<RemoveContainerResult> {
  const attempts = opts.attempts ?? 8;
  let last = "";
  for (let i = 0; i < attempts; i++) {
    if (i > 0) await sleep((opts.delayMs ?? 250) * i);
    const rm = await exec(podman.binary, [...podman.globalArgs, "rm", "--force", "--time", "0", name], { timeoutMs: 30_000 });
    if (rm.enoent) return { gone: false, error: `${podman.binary} not found` };
    last = rm.stderr.trim();
    // exit 1: no such container; 0: it exists; anything else: podman could not tell
    const exists = await exec(podman.binary, [...podman.globalArgs, "container", "exists", name], { timeoutMs: 30_000 });
    if (exists.code === 1) return { gone: true };
    if (exists.code !== 0) last = exists.stderr.trim() || last;
  }
  return { gone: false, error: `podman container ${name} still exists after ${attempts} attempts to remove it${last ? `: ${last}` : ""}` };
}
