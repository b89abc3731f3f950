/**
 * Kernel overlayfs over lower directories in overlay form (whiteouts as 0/0 character devices,
 * opaque directories by xattr — what `@lazypull/fuse-fs` serves at `<mnt>/<hex>.overlay`).
 *
 * The lower list must fit the kernel's one-page mount option limit. Like containers/storage's `l/`
 * directory, each lower gets a short symlink `<stateDir>/l/<n>` and `mount` runs with the state dir
 * as its working directory, so an option string costs ~5 bytes per layer whatever the paths: an
 * image at overlayfs' own limit of 500 layers still fits.
 */
import { mkdir, rm, symlink } from "node:fs/promises";
import { inUserNamespace } from "@lazypull/host";
import { join } from "node:path";
import { OverlayError } from "./errors.js";
import { exec } from "./exec.js";

/** the kernel copies mount options into one page, NUL included */
const OPTION_LIMIT = 4095;
/** overlayfs' OVL_MAX_STACK */
export const KERNEL_MAX_LOWERS = 500;

/**
 * Options every lazypull kernel overlay gets, decided by test on FUSE lowers (kernel 6.18, Debian 12):
 * - `index=off`: podman's overlay driver mounts with it too. The inode index wants lower file handles
 *   and a filesystem uuid; a libfuse 2 mount has neither ("null uuid detected in lower fs").
 * - `xino=off`: `auto` falls back to off anyway (null uuid); `on` works but puts the layer number in
 *   the top bits (inode numbers >= 2^63), which 32-bit programs in a container cannot `stat`
 *   (EOVERFLOW). Off keeps the FUSE mount's inode numbers; overlayfs gives each lower its own
 *   pseudo `st_dev`, so (st_dev, st_ino) stays unique and hardlinks still show one inode.
 * - `redirect_dir=on`, `metacopy=on`: a container's `chmod`/`chown` of a lower file copies up only
 *   its metadata, and `mv` of a lower directory records a redirect instead of copying the tree —
 *   neither fetches file contents from the registry (measured: `chmod` of a 3.8 MB binary and `mv`
 *   of /usr/share/doc left 36 KiB in the upper dir instead of 13 MiB, 18 ms instead of 157 ms).
 *   Both make the kernel follow `trusted.overlay.*` xattrs found on lower layers, which is safe only
 *   because fuse-fs' overlay view never serves an image's own overlay xattrs (overlay-view.ts).
 */
export const KERNEL_OVERLAY_OPTIONS = ["index=off", "xino=off", "redirect_dir=on", "metacopy=on"] as const;

/**
 * In a user namespace (rootless podman's, entered with `podman unshare`) the kernel refuses trusted.*
 * xattrs, so overlayfs keeps its own in user.overlay.* (`userxattr`), and refuses `redirect_dir` and
 * `metacopy` with it (both would follow xattrs an unprivileged user could forge): a `chmod` or `mv` of a
 * lower file there copies the file up whole. fuse-fs serves opaque directories under both names.
 */
export const USERNS_KERNEL_OVERLAY_OPTIONS = ["index=off", "xino=off", "userxattr"] as const;

export interface KernelOverlayOptions {
  /** overlay-form lower directories, TOP-MOST FIRST */
  lowerDirs: string[];
  /** holds `l/`, `upper/` and `work/` (mount options name them relative to it) */
  stateDir: string;
  merged: string;
  /** extra options from the host config */
  extraOptions: readonly string[];
}

/** The `-o` string as passed to mount(2), paths relative to `stateDir`. Exported for tests. */
export function kernelOverlayOptionString(opts: Pick<KernelOverlayOptions, "lowerDirs" | "extraOptions">, userns: boolean = inUserNamespace()): string {
  const lowers = opts.lowerDirs.map((_, i) => `l/${i}`).join(":");
  return [`lowerdir=${lowers}`, "upperdir=upper", "workdir=work", ...(userns ? USERNS_KERNEL_OVERLAY_OPTIONS : KERNEL_OVERLAY_OPTIONS), ...opts.extraOptions].join(",");
}

export async function mountKernelOverlay(opts: KernelOverlayOptions): Promise<void> {
  if (opts.lowerDirs.length > KERNEL_MAX_LOWERS) {
    throw new OverlayError("OVERLAY_TOO_MANY_LAYERS", `kernel overlayfs stacks at most ${KERNEL_MAX_LOWERS} lower layers, this image has ${opts.lowerDirs.length}`, {
      layers: opts.lowerDirs.length,
      limit: KERNEL_MAX_LOWERS,
    });
  }
  const links = join(opts.stateDir, "l");
  await rm(links, { recursive: true, force: true });
  await mkdir(links);
  await Promise.all(opts.lowerDirs.map((dir, i) => symlink(dir, join(links, String(i)))));
  const o = kernelOverlayOptionString(opts);
  if (Buffer.byteLength(o) > OPTION_LIMIT) {
    throw new OverlayError("OVERLAY_TOO_MANY_LAYERS", `kernel overlay options are ${Buffer.byteLength(o)} bytes, over the kernel's ${OPTION_LIMIT}`, { layers: opts.lowerDirs.length });
  }
  const res = await exec("mount", ["-t", "overlay", "-o", o, "lazypull", opts.merged], { cwd: opts.stateDir, timeoutMs: 30_000 });
  if (res.code !== 0) {
    throw new OverlayError(
      "OVERLAY_MOUNT_FAILED",
      res.enoent ? "mount(8) not found" : `kernel overlayfs mount on ${opts.merged} failed: ${res.stderr.trim() || `exit ${res.code ?? res.signal}`}`,
      { path: opts.merged, lowerDirs: opts.lowerDirs, options: o },
    );
  }
}
