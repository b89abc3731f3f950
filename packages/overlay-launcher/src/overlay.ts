/**
 * fuse-overlayfs over lower directories. `lowerDirs` are ordered TOP-MOST FIRST (the last layer
 * of an image manifest comes first), which is fuse-overlayfs' own `lowerdir=` order: the first
 * directory wins, and its `.wh.NAME` / `.wh..wh..opq` entries hide what lies below it.
 */
import { mkdir, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { HostConfig } from "./config.js";
import { OverlayError } from "./errors.js";
import { exec, sleep } from "./exec.js";
import { readMounts } from "./mountinfo.js";
import { unmountFuse, type UnmountResult } from "./unmount.js";

export interface OverlayMount {
  merged: string;
  upper: string;
  work: string;
  /** top-most first, as mounted */
  lowerDirs: string[];
  /** unmounts (idempotent) and checks the mount is gone; the directories stay */
  unmount(): Promise<UnmountResult>;
}

export interface MountOverlayOptions {
  /** TOP-MOST FIRST; at least one */
  lowerDirs: string[];
  /** `upper/`, `work/` (and `merged/` unless `merged` is given) are created here */
  stateDir: string;
  /** mount here instead of `<stateDir>/merged` (for `lazypull mount IMAGE DIR`) */
  merged?: string;
  host: Pick<HostConfig, "fuseOverlayfs" | "fusermount">;
}

// fuse-overlayfs splits `-o` on `,` and lowerdir on `:`, with no escaping we can rely on
const UNSAFE = /[,:\n]/;

export async function mountOverlay(opts: MountOverlayOptions): Promise<OverlayMount> {
  const { host } = opts;
  if (opts.lowerDirs.length === 0) throw new OverlayError("OVERLAY_NO_LOWER", "an overlay needs at least one lower directory", { stateDir: opts.stateDir });
  const lowerDirs = opts.lowerDirs.map((d) => resolve(d));
  const stateDir = resolve(opts.stateDir);
  const upper = join(stateDir, "upper");
  const work = join(stateDir, "work");
  const merged = resolve(opts.merged ?? join(stateDir, "merged"));
  for (const p of [...lowerDirs, upper, work, merged]) {
    if (UNSAFE.test(p)) throw new OverlayError("OVERLAY_BAD_PATH", `path ${JSON.stringify(p)} contains ',' ':' or a newline, which fuse-overlayfs cannot take`, { path: p });
  }
  for (const d of lowerDirs) {
    const st = await stat(d).catch(() => undefined);
    if (!st?.isDirectory()) throw new OverlayError("OVERLAY_NO_LOWER", `lower directory ${d} does not exist or is not a directory`, { path: d });
  }
  if ((await readMounts()).some((m) => m.mountPoint === merged)) {
    throw new OverlayError("OVERLAY_TARGET_BUSY", `${merged} is already a mount point`, { path: merged });
  }
  await Promise.all([upper, work, merged].map((d) => mkdir(d, { recursive: true })));

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
  return { merged, upper, work, lowerDirs, unmount: () => unmountFuse(merged, host) };
}
