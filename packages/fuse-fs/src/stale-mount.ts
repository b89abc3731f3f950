import { execFile } from "node:child_process";
import { readFile, stat } from "node:fs/promises";
import { resolve } from "node:path";

/** mountinfo escapes space, tab, newline and backslash as octal */
function unescapeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Mount points currently in this process's mount namespace. */
export async function listMounts(): Promise<{ mountpoint: string; fstype: string }[]> {
  const text = await readFile("/proc/self/mountinfo", "utf8");
  return text
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const fields = line.split(" ");
      const sep = fields.indexOf("-");
      return { mountpoint: unescapeMountPath(fields[4] ?? ""), fstype: fields[sep + 1] ?? "" };
    });
}

export async function isMounted(mountpoint: string): Promise<boolean> {
  const abs = resolve(mountpoint);
  return (await listMounts()).some((m) => m.mountpoint === abs);
}

export function fusermountUnmount(mountpoint: string): Promise<void> {
  return new Promise((res, rej) => {
    execFile("fusermount", ["-u", "-z", resolve(mountpoint)], (err, _out, stderr) => {
      if (err) rej(new Error(`fusermount -u -z ${mountpoint} failed: ${String(stderr).trim() || err.message}`));
      else res();
    });
  });
}

/**
 * Detaches a FUSE mount left at `mountpoint` by a process that died (its stat fails with ENOTCONN).
 * A live mount is left alone unless `force`. Returns true when something was unmounted.
 */
export async function cleanStaleMount(mountpoint: string, opts: { force?: boolean } = {}): Promise<boolean> {
  if (!(await isMounted(mountpoint))) return false;
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
