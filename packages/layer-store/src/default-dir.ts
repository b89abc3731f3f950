import { join } from "node:path";
import { hostUid, xdgDir } from "@lazypull/host";

/** Where lazypulld serves the store unless told otherwise (`lazypulld --store`, `lazypull podman setup --store`). */
export const DEFAULT_STORE_DIR = "/var/lib/lazypull/store";

/**
 * The store of the user lazypull acts for (`@lazypull/host`'s hostUid, so also inside `podman unshare`):
 * root's `/var/lib/lazypull/store`, else `$XDG_DATA_HOME/lazypull/store` (default
 * `~/.local/share/lazypull/store`). Not under `$XDG_RUNTIME_DIR`: storage.conf names the directory for
 * good, and podman refuses to start when a configured store is missing, which a tmpfs wiped at logout
 * or reboot would make it.
 */
export function defaultStoreDir(env: NodeJS.ProcessEnv = process.env, uid: number = process.getuid?.() ?? 0): string {
  if (hostUid(env, uid) === 0) return DEFAULT_STORE_DIR;
  return join(xdgDir("XDG_DATA_HOME", env), "lazypull", "store");
}
