import { execFile } from "node:child_process";
import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import { isMountPoint } from "@lazypull/host";
import { FuseFsError } from "./errors.js";

export function fusermountUnmount(mountpoint: string): Promise<void> {
  return new Promise((res, rej) => {
    execFile("fusermount", ["-u", "-z", resolve(mountpoint)], (err, _out, stderr) => {
      if (err) rej(new FuseFsError("FUSEFS_UNMOUNT_FAILED", `fusermount -u -z ${mountpoint} failed: ${String(stderr).trim() || err.message}`, { mountpoint }, { cause: err }));
      else res();
    });
  });
}

/**
 * Detaches a FUSE mount left at `mountpoint` by a process that died (its stat fails with ENOTCONN).
 * A live mount is left alone unless `force`. Returns true when something was unmounted.
 */
export async function cleanStaleMount(mountpoint: string, opts: { force?: boolean } = {}): Promise<boolean> {
  if (!(await isMountPoint(mountpoint))) return false;
  let stale = false;
  try {
    await stat(mountpoint);
  } catch (err) {
    stale = (err as NodeJS.ErrnoException).code === "ENOTCONN";
  }
  if (!stale && !opts.force) return false;
  await fusermountUnmount(mountpoint);
  return true;
}
