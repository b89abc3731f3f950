/**
 * Every host-specific default of the launcher lives here, and only here. Code paths read the
 * loaded `HostConfig`; a config file (see `config.ts`) overrides any of these.
 */
import { hostUid } from "@lazypull/host";
import { join } from "node:path";

export type OverlayPreference = "auto" | "kernel" | "fuse-overlayfs";

export const DEFAULT_CONFIG_PATH = "/etc/lazypull/config.json";
export const CONFIG_PATH_ENV = "LAZYPULL_CONFIG";

export const DEFAULTS = {
  podman: {
    binary: "podman",
    /** crun rejects the hybrid cgroup (v1) layout of Debian 12 hosts like this one */
    runtime: "runc",
    /** podman flags before `run` (e.g. `--root`, `--cgroup-manager`) */
    globalArgs: [] as string[],
    /** extra `podman run` flags (e.g. `--cgroups=disabled`) */
    runArgs: [] as string[],
    /**
     * `host`: no netavark bridge to set up (about 0.2 s faster per start here) and nothing left in
     * the firewall if lazypull is killed; `null` leaves the choice to podman.
     */
    network: "host" as string | null,
    /** after a forwarded SIGINT/SIGTERM, how long the container gets before it is killed */
    stopTimeoutMs: 10_000,
  },
  /**
   * podman's defaults raise RLIMIT_NOFILE/NPROC, which the host does not permit ("error setting
   * rlimit type 7"); these are clamped to the host's hard limits at run time.
   */
  ulimits: { nofile: "4096:4096", nproc: "4096:4096" } as Record<string, string>,
  /**
   * `auto`: kernel overlayfs when this process may mount it (root) and the layers come in overlay
   * form, else fuse-overlayfs; `kernel` fails instead of falling back; `fuse-overlayfs` never tries the kernel.
   */
  overlay: "auto" as OverlayPreference,
  kernelOverlay: {
    /** extra `-o` options after lazypull's own (see kernel-overlay.ts for those and why) */
    options: [] as string[],
  },
  fuseOverlayfs: {
    binary: "fuse-overlayfs",
    /**
     * extra `-o` options, e.g. `squash_to_root`. `static_nlink`: without it fuse-overlayfs reloads
     * every directory it looks up to count links, which costs thousands of ops on the lazy layers.
     */
    options: ["static_nlink"] as string[],
    mountTimeoutMs: 10_000,
  },
  /** tried in order for unmounting FUSE mounts */
  fusermount: ["fusermount3", "fusermount"],
} as const;

/**
 * `/run/lazypull` for root, `$XDG_RUNTIME_DIR/lazypull` otherwise (tmpfs: leftovers vanish on reboot) —
 * also inside `podman unshare`, where lazypull is uid 0 but acts for the user.
 */
export function defaultStateRoot(env: NodeJS.ProcessEnv = process.env, realUid: number = process.getuid?.() ?? 0): string {
  const uid = hostUid(env, realUid);
  if (uid === 0) return "/run/lazypull";
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, "lazypull");
  return join("/tmp", `lazypull-${uid}`);
}
