// Rootless: an ordinary user's containers run in rootless podman's user and mount namespace (held by its
// pause process), where mounts made in the host's namespace are not seen. So the commands that mount
// (run, mount, umount) run themselves again inside that namespace with `podman unshare`: there they are
// uid 0 of the namespace, may mount FUSE and overlayfs, and what the TOC says is owned by root is owned
// by the namespace's root — the user — as rootless podman maps it. State and cache stay the user's
// (`@lazypull/host`'s hostUid). This process only waits, forwards signals, and reports the exit status.
import { spawn } from "node:child_process";
import { accessSync, constants, readdirSync, readFileSync } from "node:fs";
import { userInfo } from "node:os";
import { delimiter, join } from "node:path";
import { isProcessAlive } from "@lazypull/host";
import { CliError } from "./errors.js";

/** the subcommands that mount, and so must run inside rootless podman's namespaces */
const MOUNTING = new Set(["run", "mount", "umount"]);
/** set in the re-executed process: the pid of the one that waits for it */
const PARENT_ENV = "LAZYPULL_ROOTLESS_PARENT";

function onPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

function hasSubordinateIds(file: string, user: string, uid: number): boolean {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return false;
  }
  return text.split("\n").some((line) => {
    const [who, , count] = line.trim().split(":");
    return (who === user || who === String(uid)) && Number(count) > 0;
  });
}

/**
 * Why rootless cannot work on this host, as a typed error naming the fix; undefined when it can.
 * Checked before `podman unshare`, whose own messages do not say what to do.
 */
export function rootlessProblem(env: NodeJS.ProcessEnv = process.env, podman = "podman"): CliError | undefined {
  const { username, uid } = userInfo();
  const podmanPath = podman.includes("/") ? podman : onPath(podman, env);
  if (!podmanPath) {
    return new CliError("CLI_ROOTLESS_NO_PODMAN", `rootless lazypull runs containers with rootless podman, and "${podman}" is not on PATH; install podman (apt install podman uidmap)`, { binary: podman });
  }
  for (const file of ["/etc/subuid", "/etc/subgid"]) {
    if (!hasSubordinateIds(file, username, uid)) {
      return new CliError(
        "CLI_ROOTLESS_NO_SUBIDS",
        `${username} has no subordinate ids in ${file}, which rootless podman needs to map the image's users; as root: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${username}, then podman system migrate`,
        { user: username, file },
      );
    }
  }
  try {
    accessSync("/dev/fuse", constants.R_OK | constants.W_OK);
  } catch {
    return new CliError("CLI_ROOTLESS_NO_FUSE_DEVICE", `${username} cannot open /dev/fuse, which serving the layers needs; as root: chmod 0666 /dev/fuse (udev does this on most hosts; see /lib/udev/rules.d/*fuse*)`, {
      user: username,
      path: "/dev/fuse",
    });
  }
  if (!onPath("fusermount3", env) && !onPath("fusermount", env)) {
    return new CliError("CLI_ROOTLESS_NO_FUSERMOUNT", "fusermount3 is not on PATH; rootless FUSE mounts need it: apt install fuse3", { binary: "fusermount3" });
  }
  return undefined;
}

/** The node process `podman unshare` started for us: its child running our own executable. */
function innerPid(podmanPid: number): number | undefined {
  try {
    for (const task of readdirSync(`/proc/${podmanPid}/task`)) {
      for (const c of readFileSync(`/proc/${podmanPid}/task/${task}/children`, "utf8").trim().split(/\s+/)) {
        if (!c) continue;
        const exe = readFileSync(`/proc/${c}/cmdline`, "utf8").split("\0")[0];
        if (exe === process.execPath) return Number(c);
      }
    }
  } catch {
    // gone, or not there yet
  }
  return undefined;
}

/**
 * For a rootless user's run/mount/umount: runs this very command again inside rootless podman's
 * namespaces and returns its exit status; undefined when nothing needs to be done (root, already inside,
 * or a command that mounts nothing).
 */
export async function runInRootlessNamespace(argv: string[] = process.argv, env: NodeJS.ProcessEnv = process.env): Promise<number | undefined> {
  if ((process.getuid?.() ?? 0) === 0) return undefined;
  const command = argv.slice(2).find((a) => !a.startsWith("-"));
  if (!command || !MOUNTING.has(command)) return undefined;
  const problem = rootlessProblem(env);
  if (problem) throw problem;
  const child = spawn("podman", ["unshare", process.execPath, ...process.execArgv, ...argv.slice(1)], {
    stdio: "inherit",
    env: { ...env, [PARENT_ENV]: String(process.pid) },
  });
  // podman unshare does not pass signals on (its child outlives it): they go to our copy directly. A
  // keyboard Ctrl-C reaches every process of the terminal's foreground group, ours included, so SIGINT is
  // passed on only when there is no terminal (someone sent it to this process alone).
  const forward = (sig: NodeJS.Signals) => {
    if (sig === "SIGINT" && process.stdin.isTTY) return;
    const pid = child.pid === undefined ? undefined : innerPid(child.pid);
    if (pid !== undefined) process.kill(pid, sig);
    else child.kill(sig);
  };
  const signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
  for (const s of signals) process.on(s, forward);
  try {
    return await new Promise<number>((resolve, reject) => {
      child.once("error", (err) => reject(new CliError("CLI_ROOTLESS_NO_PODMAN", `cannot start podman unshare: ${err.message}`, { binary: "podman" }, { cause: err })));
      child.once("exit", (code, signal) => resolve(code ?? 128 + (signal === "SIGKILL" ? 9 : signal === "SIGTERM" ? 15 : signal === "SIGINT" ? 2 : 1)));
    });
  } finally {
    for (const s of signals) process.off(s, forward);
  }
}

/**
 * In the re-executed copy: when the process that waits for us dies (SIGKILL leaves it no chance to pass
 * anything on), act as if told to stop, so our mounts and container are undone as on SIGTERM.
 */
export function stopWithRootlessParent(env: NodeJS.ProcessEnv = process.env): void {
  const parent = Number(env[PARENT_ENV]);
  if (!Number.isInteger(parent) || parent <= 0) return;
  const timer = setInterval(() => {
    if (!isProcessAlive(parent)) {
      clearInterval(timer);
      process.kill(process.pid, "SIGTERM");
    }
  }, 500);
  timer.unref();
}
