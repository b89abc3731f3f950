/** Unmounting FUSE mounts: `fusermount3 -u`, then `fusermount -u`, then lazy `-z`; verified in mountinfo. */
import type { HostConfig } from "./config.js";
import { OverlayError } from "./errors.js";
import { exec, sleep } from "./exec.js";
import { isMountPoint } from "./mountinfo.js";

export interface UnmountResult {
  path: string;
  /** false when nothing was mounted there */
  wasMounted: boolean;
  /** the command that did it, e.g. `fusermount3 -u` */
  via?: string;
}

/** Unmounts one mount point; a no-op when it is not mounted. Throws `OVERLAY_UNMOUNT_FAILED`. */
export async function unmountFuse(
  path: string,
  host: Pick<HostConfig, "fusermount">,
  opts: { lazyOnly?: boolean } = {},
): Promise<UnmountResult> {
  if (!(await isMountPoint(path))) return { path, wasMounted: false };
  const attempts: string[][] = [];
  if (!opts.lazyOnly) for (const bin of host.fusermount) attempts.push([bin, "-u"]);
  for (const bin of host.fusermount) attempts.push([bin, "-u", "-z"]);
  // root may also hold non-FUSE mounts (podman's bind mounts); umount(8) is the last resort
  attempts.push(["umount", "-l"]);
  const failures: string[] = [];
  for (const [bin, ...flags] of attempts) {
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
  throw new OverlayError("OVERLAY_UNMOUNT_FAILED", `cannot unmount ${path}: ${failures.join("; ")}`, { path, failures });
}
