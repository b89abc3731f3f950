/**
 * Unmounting what lazypull mounted. FUSE mounts (the lazy layers, fuse-overlayfs): `fusermount3 -u`,
 * then `fusermount -u`, then lazily. Kernel mounts (overlayfs): `umount`, then `umount -l`. Each
 * attempt is verified in mountinfo.
 */
import type { HostConfig } from "./config.js";
import { OverlayError } from "./errors.js";
import { isMountPoint, readMounts, sleep } from "@lazypull/host";
import { exec } from "./exec.js";

export interface UnmountResult {
  path: string;
  /** false when nothing was mounted there */
  wasMounted: boolean;
  /** the command that did it, e.g. `fusermount3 -u` */
  via?: string;
}

function attemptsFor(fsType: string, host: Pick<HostConfig, "fusermount">, lazyOnly: boolean): string[][] {
  const attempts: string[][] = [];
  if (fsType === "fuse" || fsType.startsWith("fuse.")) {
    if (!lazyOnly) for (const bin of host.fusermount) attempts.push([bin, "-u"]);
    for (const bin of host.fusermount) attempts.push([bin, "-u", "-z"]);
  } else if (!lazyOnly) {
    attempts.push(["umount"]);
  }
  // root may also hold other mounts below a state dir (podman's bind mounts); a lazy umount is the last resort
  attempts.push(["umount", "-l"]);
  return attempts;
}

/** Unmounts one mount point of any kind; a no-op when it is not mounted. Throws `OVERLAY_UNMOUNT_FAILED`. */
export async function unmountPath(
  path: string,
  host: Pick<HostConfig, "fusermount">,
  opts: { lazyOnly?: boolean } = {},
): Promise<UnmountResult> {
  // the top-most mount at the path is the one an unmount removes
  const entry = (await readMounts()).filter((m) => m.mountPoint === path).at(-1);
  if (!entry) return { path, wasMounted: false };
  const failures: string[] = [];
  for (const [bin, ...flags] of attemptsFor(entry.fsType, host, opts.lazyOnly === true)) {
    const res = await exec(bin!, [...flags, path], { timeoutMs: 15_000 });
    if (res.enoent) {
      failures.push(`${bin}: not found`);
      continue;
    }
    // the kernel drops the entry asynchronously after a FUSE daemon exits; give it a moment
    for (let i = 0; i < (res.code === 0 ? 50 : 1); i++) {
      if (!(await isMountPoint(path))) return { path, wasMounted: true, via: [bin, ...flags].join(" ") };
      await sleep(20);
    }
    failures.push(`${[bin, ...flags].join(" ")}: ${res.stderr.trim() || `exit ${res.code ?? res.signal}`}`);
  }
  throw new OverlayError("OVERLAY_UNMOUNT_FAILED", `cannot unmount ${path}: ${failures.join("; ")}`, { path, failures, fsType: entry.fsType });
}
