import { constants } from "node:fs";
import { access, readdir, readFile } from "node:fs/promises";
import { delimiter, join } from "node:path";

const O_CLOEXEC = 0o2000000;

/**
 * Descriptors (≥ 3) this process would hand to a child: native code opens some without O_CLOEXEC.
 * libfuse 2 under fuse-native does so for `/dev/fuse` and for its auto_unmount socket to fusermount.
 */
export async function inheritableFds(): Promise<number[]> {
  let names: string[];
  try {
    names = await readdir("/proc/self/fdinfo");
  } catch {
    return [];
  }
  // read in parallel: this runs before every child the launcher starts, on the way to the container
  const fds = names.map(Number).filter((fd) => Number.isInteger(fd) && fd >= 3);
  const infos = await Promise.all(fds.map((fd) => readFile(`/proc/self/fdinfo/${fd}`, "utf8").catch(() => "")));
  return fds
    .filter((_, i) => {
      const flags = /^flags:\s+([0-7]+)$/m.exec(infos[i]!)?.[1];
      return flags !== undefined && (parseInt(flags, 8) & O_CLOEXEC) === 0;
    })
    .sort((a, b) => a - b);
}

/**
 * The command line that runs `cmd args` without this process's inheritable descriptors: bash closes
 * them and execs the command (same pid, so signals and exit codes are the command's own).
 *
 * Why: fuse-overlayfs, podman, conmon and the container inherited lazypull's FUSE connection. After a
 * SIGKILL of lazypull that connection stayed open in them, so reads of the lower layers hung forever
 * (fuse-overlayfs and the container stuck in D state) and fusermount, waiting for its socket to close,
 * never unmounted. bash, not sh: dash cannot redirect descriptors above 9.
 */
export function withoutFds(cmd: string, args: readonly string[], fds: readonly number[]): { cmd: string; args: string[] } {
  if (fds.length === 0) return { cmd, args: [...args] };
  return { cmd: "/bin/bash", args: ["-c", `exec ${fds.map((fd) => `${fd}>&-`).join(" ")} "$@"`, "lazypull-exec", cmd, ...args] };
}

async function executable(cmd: string): Promise<boolean> {
  const candidates = cmd.includes("/") ? [cmd] : (process.env.PATH ?? "").split(delimiter).filter(Boolean).map((d) => join(d, cmd));
  for (const c of candidates) {
    if (await access(c, constants.X_OK).then(() => true, () => false)) return true;
  }
  return false;
}

/**
 * `withoutFds` with this process's inheritable descriptors as they are now. A command that does not
 * exist is left unwrapped, so spawning it fails with ENOENT as callers expect.
 */
export async function childCommand(cmd: string, args: readonly string[]): Promise<{ cmd: string; args: string[] }> {
  const fds = await inheritableFds();
  if (fds.length === 0 || !(await executable(cmd))) return { cmd, args: [...args] };
  return withoutFds(cmd, args, fds);
}
