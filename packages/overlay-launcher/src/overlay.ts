/**
 * The overlay over an image's layer directories: kernel overlayfs where it can be mounted, else
 * fuse-overlayfs. Lower directories are ordered TOP-MOST FIRST (the last layer of an image manifest
 * comes first), which is `lowerdir=`'s own order: the first directory wins.
 */
import { mkdir, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { HostConfig } from "./config.js";
import { OverlayError } from "./errors.js";
import { readMounts, sleep } from "@lazypull/host";
import { exec } from "./exec.js";
import { mountKernelOverlay } from "./kernel-overlay.js";
import { unmountPath, type UnmountResult } from "./unmount.js";

export type OverlayKind = "kernel" | "fuse-overlayfs";

export interface OverlayMount {
  /** which overlay was mounted */
  kind: OverlayKind;
  /** why `auto` did not use the kernel's, when it did not */
  fallbackReason?: string;
  merged: string;
  upper: string;
  work: string;
  /** top-most first, as mounted */
  lowerDirs: string[];
  /** unmounts (idempotent) and checks the mount is gone; the directories stay */
  unmount(): Promise<UnmountResult>;
}

export interface MountOverlayOptions {
  /** TOP-MOST FIRST, in OCI form (`.wh.NAME` whiteout files): what fuse-overlayfs reads; at least one */
  lowerDirs: string[];
  /**
   * The same layers in overlay form (0/0 character device whiteouts, opaque xattr), TOP-MOST FIRST:
   * what kernel overlayfs reads. Without them only fuse-overlayfs can stack the layers.
   */
  overlayLowerDirs?: string[];
  /** `upper/`, `work/` (and `merged/` unless `merged` is given) are created here */
  stateDir: string;
  /** mount here instead of `<stateDir>/merged` (for `lazypull mount IMAGE DIR`) */
  merged?: string;
  host: Pick<HostConfig, "overlay" | "kernelOverlay" | "fuseOverlayfs" | "fusermount">;
}

// fuse-overlayfs splits `-o` on `,` and lowerdir on `:`, with no escaping we can rely on
const UNSAFE = /[,:\n]/;

function unsafePath(p: string): OverlayError | undefined {
  if (!UNSAFE.test(p)) return undefined;
  return new OverlayError("OVERLAY_BAD_PATH", `path ${JSON.stringify(p)} contains ',' ':' or a newline, which overlay mount options cannot take`, { path: p });
}

/** Why `dirs` cannot be an overlay's lower directories (the error to throw), or undefined when they can. */
async function badLowerDirs(dirs: string[]): Promise<OverlayError | undefined> {
  for (const p of dirs) {
    const unsafe = unsafePath(p);
    if (unsafe) return unsafe;
  }
  for (const d of dirs) {
    const st = await stat(d).catch(() => undefined);
    if (!st?.isDirectory()) return new OverlayError("OVERLAY_NO_LOWER", `lower directory ${d} does not exist or is not a directory`, { path: d });
  }
  return undefined;
}

export async function mountOverlay(opts: MountOverlayOptions): Promise<OverlayMount> {
  const { host } = opts;
  if (opts.lowerDirs.length === 0) throw new OverlayError("OVERLAY_NO_LOWER", "an overlay needs at least one lower directory", { stateDir: opts.stateDir });
  const lowerDirs = opts.lowerDirs.map((d) => resolve(d));
  const stateDir = resolve(opts.stateDir);
  const upper = join(stateDir, "upper");
  const work = join(stateDir, "work");
  const merged = resolve(opts.merged ?? join(stateDir, "merged"));
  for (const p of [...lowerDirs, upper, work, merged]) {
    const unsafe = unsafePath(p);
    if (unsafe) throw unsafe;
  }
  const bad = await badLowerDirs(lowerDirs);
  if (bad) throw bad;
  if ((await readMounts()).some((m) => m.mountPoint === merged)) {
    throw new OverlayError("OVERLAY_TARGET_BUSY", `${merged} is already a mount point`, { path: merged });
  }
  await Promise.all([upper, work, merged].map((d) => mkdir(d, { recursive: true })));

  const unmount = () => unmountPath(merged, host);
  const kernel = await kernelChoice(opts);
  // a config that asks for fuse-overlayfs gets it; `fallbackReason` is for `auto` not getting the kernel's
  let fallbackReason = kernel.ok || host.overlay === "fuse-overlayfs" ? undefined : kernel.reason;
  if (kernel.ok) {
    try {
      await mountKernelOverlay({ lowerDirs: kernel.lowerDirs, stateDir, merged, extraOptions: host.kernelOverlay.options });
      return { kind: "kernel", merged, upper, work, lowerDirs: kernel.lowerDirs, unmount };
    } catch (err) {
      if (host.overlay === "kernel") throw err;
      fallbackReason = (err as Error).message;
    }
  } else if (host.overlay === "kernel") {
    throw new OverlayError("OVERLAY_KERNEL_UNAVAILABLE", `kernel overlayfs was asked for (config overlay: "kernel") but ${kernel.reason}`, { path: merged });
  }
  await mountFuseOverlayfs({ lowerDirs, upper, work, merged, host });
  return { kind: "fuse-overlayfs", ...(fallbackReason ? { fallbackReason } : {}), merged, upper, work, lowerDirs, unmount };
}

type KernelChoice = { ok: true; lowerDirs: string[] } | { ok: false; reason: string };

async function kernelChoice(opts: MountOverlayOptions): Promise<KernelChoice> {
  if (opts.host.overlay === "fuse-overlayfs") return { ok: false, reason: 'config overlay: "fuse-overlayfs"' };
  if (!opts.overlayLowerDirs) return { ok: false, reason: "the layers are not served in overlay form" };
  if (opts.overlayLowerDirs.length !== opts.lowerDirs.length) {
    throw new OverlayError("OVERLAY_NO_LOWER", `${opts.lowerDirs.length} OCI lower dirs but ${opts.overlayLowerDirs.length} in overlay form`, {});
  }
  // root of the host, or root of rootless podman's user namespace (kernel >= 5.11 allows overlayfs there)
  if (process.geteuid?.() !== 0) return { ok: false, reason: "only root (or root in podman's user namespace) may mount kernel overlayfs" };
  const lowerDirs = opts.overlayLowerDirs.map((d) => resolve(d));
  const bad = await badLowerDirs(lowerDirs);
  return bad ? { ok: false, reason: bad.message } : { ok: true, lowerDirs };
}

async function mountFuseOverlayfs(opts: { lowerDirs: string[]; upper: string; work: string; merged: string; host: MountOverlayOptions["host"] }): Promise<void> {
  const { host, lowerDirs, upper, work, merged } = opts;
  const o = [`lowerdir=${lowerDirs.join(":")}`, `upperdir=${upper}`, `workdir=${work}`, ...host.fuseOverlayfs.options].join(",");
  const res = await exec(host.fuseOverlayfs.binary, ["-o", o, merged], { timeoutMs: host.fuseOverlayfs.mountTimeoutMs });
  if (res.code !== 0) {
    throw new OverlayError(
      "OVERLAY_MOUNT_FAILED",
      res.enoent ? `${host.fuseOverlayfs.binary} not found (config fuseOverlayfs.binary)` : `fuse-overlayfs failed on ${merged}: ${res.stderr.trim() || `exit ${res.code ?? res.signal}`}`,
      { path: merged, lowerDirs, binary: host.fuseOverlayfs.binary },
    );
  }
  // fuse-overlayfs daemonizes once mounted, but only mountinfo proves the kernel sees it
  const deadline = Date.now() + host.fuseOverlayfs.mountTimeoutMs;
  while (!(await readMounts()).some((m) => m.mountPoint === merged)) {
    if (Date.now() > deadline) {
      throw new OverlayError("OVERLAY_MOUNT_TIMEOUT", `fuse-overlayfs did not appear at ${merged} within ${host.fuseOverlayfs.mountTimeoutMs} ms`, { path: merged });
    }
    await sleep(10);
  }
}
