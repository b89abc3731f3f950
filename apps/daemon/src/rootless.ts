// Rootless lazypulld: an ordinary user's containers run in rootless podman's user and mount namespace
// (held by its pause process), where mounts made in the host's namespace are not seen; so do the user's
// `lazypull run`s, which re-execute themselves there. The daemon therefore serves from inside it too:
// started as an ordinary user, it runs itself again under `podman unshare` (`@lazypull/host`'s
// runUnderPodmanUnshare, shared with the CLI) and that process only waits, passes signals on and reports
// the exit status. What is the daemon's own: its error codes, the store directory made first, and noticing
// that podman moved to new namespaces.
import { mkdir, readFile, readlink } from "node:fs/promises";
import { join } from "node:path";
import { inRootlessNamespace, pollUntil, rootlessProblem, runUnderPodmanUnshare, watchOuter as watchOuterProcess, type RootlessProblem } from "@lazypull/host";
import { DaemonError, type DaemonErrorCode } from "./errors.js";

/** set in the re-executed daemon: `<pid>` of the process that waits for it */
export const OUTER_ENV = "LAZYPULLD_ROOTLESS_OUTER";

const CODES: Record<RootlessProblem["missing"], DaemonErrorCode> = {
  podman: "DAEMON_ROOTLESS_NO_PODMAN",
  subids: "DAEMON_ROOTLESS_NO_SUBIDS",
  "fuse-device": "DAEMON_ROOTLESS_NO_FUSE_DEVICE",
  fusermount: "DAEMON_ROOTLESS_NO_FUSERMOUNT",
};

/** A missing rootless prerequisite as the daemon's typed error (the message names the fix). */
export function rootlessError(problem: RootlessProblem): DaemonError {
  return new DaemonError(CODES[problem.missing], problem.message, problem.context);
}

/**
 * For lazypulld started by an ordinary user outside rootless podman's namespace: runs this very command
 * again inside it (`podman unshare`) and resolves to its exit status; undefined when nothing needs to be
 * done (root, or already inside). Throws the prerequisite that is missing.
 */
export async function runInRootlessNamespace(
  argv: string[] = process.argv,
  env: NodeJS.ProcessEnv = process.env,
  opts: { store?: string | false } = {},
): Promise<number | undefined> {
  if ((process.getuid?.() ?? 0) === 0) return undefined;
  const problem = rootlessProblem("lazypulld", env);
  if (problem) throw rootlessError(problem);
  // every podman command, `podman unshare` included, refuses to start while a store its storage.conf
  // names is missing ("overlay: can't stat additionallayerstore dir")
  if (opts.store) await mkdir(opts.store, { recursive: true });
  try {
    return await runUnderPodmanUnshare(argv, env, OUTER_ENV);
  } catch (err) {
    throw new DaemonError("DAEMON_ROOTLESS_NO_PODMAN", `cannot start podman unshare: ${(err as Error).message}`, { binary: "podman" }, { cause: err });
  }
}

/** In the re-executed daemon: calls `stop` when the process that waits for it dies (see host's watchOuter). */
export function watchOuter(stop: () => void, env: NodeJS.ProcessEnv = process.env): Promise<() => void> {
  return watchOuterProcess(stop, OUTER_ENV, env);
}

/**
 * podman's pause process file: it holds the user's namespaces, and podman joins the namespaces of the
 * pid it names (containers.conf `tmp_dir`, default `$XDG_RUNTIME_DIR/libpod/tmp`).
 */
export function pausePidFile(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.XDG_RUNTIME_DIR?.startsWith("/") ? join(env.XDG_RUNTIME_DIR, "libpod", "tmp", "pause.pid") : undefined;
}

/**
 * True when podman's pause process lives in another mount namespace than this process: podman has made
 * new namespaces (`podman system migrate` or `reset`, or the pause process was killed with no container
 * left to rejoin) and no longer sees our mounts. Our own namespace's processes are always readable to us
 * (uid 0 with every capability in it), so a refused readlink means a foreign one too. No pause process
 * (none yet, or podman about to rejoin ours through a container) says nothing.
 */
export async function namespaceReplaced(pidFile: string, self = "/proc/self/ns/mnt"): Promise<boolean> {
  let pid: number;
  try {
    pid = Number((await readFile(pidFile, "utf8")).trim());
  } catch {
    return false;
  }
  if (!Number.isInteger(pid) || pid <= 0) return false;
  let theirs: string;
  try {
    theirs = await readlink(`/proc/${pid}/ns/mnt`);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === "EACCES" || code === "EPERM";
  }
  return theirs !== (await readlink(self));
}

/**
 * Inside rootless podman's namespace: calls `replaced` once podman has moved to new namespaces, where a
 * restarted daemon would serve again (systemd's Restart=on-failure does that). Returns the stopper.
 */
export function watchNamespace(
  replaced: () => void,
  env: NodeJS.ProcessEnv = process.env,
  { intervalMs = 5000, uid = process.getuid?.() ?? 0 }: { intervalMs?: number; uid?: number } = {},
): () => void {
  const file = pausePidFile(env);
  if (!inRootlessNamespace(env, uid) || file === undefined) return () => undefined;
  return pollUntil(() => namespaceReplaced(file), intervalMs, replaced);
}
