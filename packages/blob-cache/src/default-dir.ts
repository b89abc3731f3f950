import { hostUid, xdgDir } from "@lazypull/host";
import { join } from "node:path";

/**
 * One cache directory per host user: `$LAZYPULL_CACHE_DIR` if set, else `/var/cache/lazypull` for root
 * (the daemon and a root CLI share it), else `$XDG_CACHE_HOME/lazypull` (default `~/.cache/lazypull`), also
 * inside the user's `podman unshare`.
 */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env, realUid: number | undefined = process.getuid?.()): string {
  if (env.LAZYPULL_CACHE_DIR) return env.LAZYPULL_CACHE_DIR;
  // inside `podman unshare` lazypull is uid 0 but acts for the user: the user's cache, not root's
  if (hostUid(env, realUid ?? 0) === 0 && realUid !== undefined) return "/var/cache/lazypull";
  return join(xdgDir("XDG_CACHE_HOME", env), "lazypull");
}
