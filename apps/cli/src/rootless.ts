// Rootless: an ordinary user's containers run in rootless podman's user and mount namespace, where mounts
// made in the host's namespace are not seen. So the commands that mount (run, mount, umount) run
// themselves again inside it (`@lazypull/host`'s runUnderPodmanUnshare): there they are uid 0 of the
// namespace, may mount FUSE and overlayfs, and what the TOC says root owns is the namespace's root's —
// the user's — as rootless podman maps it. State and cache stay the user's (host's hostUid).
import { forwardedSignalWindowMs, rootlessProblem, runUnderPodmanUnshare, watchOuter, type RootlessProblem } from "@lazypull/host";
import { CliError, type CliErrorCode } from "./errors.js";

/** the subcommands that mount, and so must run inside rootless podman's namespaces */
const MOUNTING = new Set(["run", "mount", "umount"]);
/** set in the re-executed process: the pid of the one that waits for it */
const OUTER_ENV = "LAZYPULL_ROOTLESS_PARENT";

const CODES: Record<RootlessProblem["missing"], CliErrorCode> = {
  podman: "CLI_ROOTLESS_NO_PODMAN",
  subids: "CLI_ROOTLESS_NO_SUBIDS",
  "fuse-device": "CLI_ROOTLESS_NO_FUSE_DEVICE",
  fusermount: "CLI_ROOTLESS_NO_FUSERMOUNT",
};

/**
 * For a rootless user's run/mount/umount: runs this very command again inside rootless podman's
 * namespaces and returns its exit status; undefined when nothing needs to be done (root, already inside,
 * or a command that mounts nothing). A host that cannot do it gets a typed error naming the fix.
 */
export async function runInRootlessNamespace(argv: string[] = process.argv, env: NodeJS.ProcessEnv = process.env): Promise<number | undefined> {
  if ((process.getuid?.() ?? 0) === 0) return undefined;
  const command = argv.slice(2).find((a) => !a.startsWith("-"));
  if (!command || !MOUNTING.has(command)) return undefined;
  const problem = rootlessProblem("lazypull", env);
  if (problem) throw new CliError(CODES[problem.missing], problem.message, problem.context);
  try {
    return await runUnderPodmanUnshare(argv, env, OUTER_ENV);
  } catch (err) {
    throw new CliError("CLI_ROOTLESS_NO_PODMAN", `cannot start podman unshare: ${(err as Error).message}`, { binary: "podman" }, { cause: err });
  }
}

/**
 * In the re-executed copy, how long a repeated signal counts as the same one: a signal sent to the whole
 * process group reaches us directly and again through the waiting process (0 elsewhere).
 */
export function repeatedSignalWindowMs(env: NodeJS.ProcessEnv = process.env): number {
  return forwardedSignalWindowMs(OUTER_ENV, env);
}

/**
 * In the re-executed copy: when the process that waits for us dies (SIGKILL leaves it no chance to pass
 * anything on), act as if told to stop, so our mounts and container are undone as on SIGTERM.
 */
export async function stopWithRootlessParent(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  await watchOuter(() => process.kill(process.pid, "SIGTERM"), OUTER_ENV, env);
}
