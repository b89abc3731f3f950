// Running lazypull inside rootless podman's user and mount namespace (held by its pause process), where an
// ordinary user's containers run and where mounts made in the host's namespace are not seen. The CLI's
// mounting commands and lazypulld run themselves again under `podman unshare`; the process that did so
// only waits, passes signals on and reports the exit status. What each program calls its errors is its
// own: the checks here say what is missing and how to fix it, in plain data.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { accessSync, constants, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { readFile, rm } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import { delimiter, join } from "node:path";
import { isProcessAlive, isSameProcessAlive, processStartTime } from "./process.js";
import { inRootlessNamespace } from "./rootless.js";

/** What rootless lazypull needs from the host and did not find. */
export interface RootlessProblem {
  missing: "podman" | "subids" | "fuse-device" | "fusermount";
  /** what is wrong and the command that fixes it */
  message: string;
  context: Record<string, string>;
}

export interface RootlessHost {
  user: string;
  uid: number;
  /** `/etc/subuid`, `/etc/subgid` */
  subidFiles: string[];
  fuseDevice: string;
}

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

const thisHost = (): RootlessHost => {
  const { username, uid } = userInfo();
  return { user: username, uid, subidFiles: ["/etc/subuid", "/etc/subgid"], fuseDevice: "/dev/fuse" };
};

/**
 * What keeps rootless lazypull from working on this host, with the fix; undefined when nothing does.
 * Checked before `podman unshare`, whose own messages do not say what to do. `who` names the program.
 */
export function rootlessProblem(who: string, env: NodeJS.ProcessEnv = process.env, podman = "podman", host: RootlessHost = thisHost()): RootlessProblem | undefined {
  const { user, uid } = host;
  if (!(podman.includes("/") ? podman : onPath(podman, env))) {
    return { missing: "podman", message: `rootless ${who} works inside rootless podman's namespace, and "${podman}" is not on PATH; install podman (apt install podman uidmap)`, context: { binary: podman } };
  }
  for (const file of host.subidFiles) {
    if (!hasSubordinateIds(file, user, uid)) {
      return {
        missing: "subids",
        message: `${user} has no subordinate ids in ${file}, which rootless podman needs to map the image's users; as root: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${user}, then podman system migrate`,
        context: { user, file },
      };
    }
  }
  try {
    accessSync(host.fuseDevice, constants.R_OK | constants.W_OK);
  } catch {
    return {
      missing: "fuse-device",
      message: `${user} cannot open ${host.fuseDevice}, which serving the layers needs; as root: chmod 0666 /dev/fuse (udev does this on most hosts; see /lib/udev/rules.d/*fuse*)`,
      context: { user, path: host.fuseDevice },
    };
  }
  if (!onPath("fusermount3", env) && !onPath("fusermount", env)) {
    return { missing: "fusermount", message: "fusermount3 is not on PATH; rootless FUSE mounts need it: apt install fuse3", context: { binary: "fusermount3" } };
  }
  return undefined;
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      for (const c of readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").trim().split(/\s+/)) if (c) out.push(Number(c));
    }
  } catch {
    // gone
  }
  return out;
}

/**
 * The process `podman unshare` started for us: the first descendant running our own executable. Not only
 * among its children: the podman that creates the namespace (no pause process yet) runs itself again
 * inside it, and that copy is the one that starts the command.
 */
export function findInner(podmanPid: number, execPath: string = process.execPath): number | undefined {
  const queue = childrenOf(podmanPid);
  for (let seen = 0; queue.length > 0 && seen < 64; seen++) {
    const pid = queue.shift()!;
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0] === execPath) return pid;
    } catch {
      continue;
    }
    queue.push(...childrenOf(pid));
  }
  return undefined;
}

const waitGone = async (pid: number) => {
  while (isProcessAlive(pid)) await new Promise((r) => setTimeout(r, 200));
};

/**
 * Runs this very program (`argv`) again under `podman unshare` and resolves to its exit status, after it
 * has ended. podman passes no signal on (its child outlives it), so SIGTERM goes to our copy
 * directly once it is found, and SIGINT too when there is no terminal: a keyboard Ctrl-C already reaches
 * the terminal's whole foreground group, our copy included. `outerEnv` names the variable that tells the
 * copy our pid (see `watchOuter`). Rejects with the spawn error when podman cannot be started.
 */
export async function runUnderPodmanUnshare(argv: string[], env: NodeJS.ProcessEnv, outerEnv: string): Promise<number> {
  // our copy writes its exit status here (watchOuter): podman's own status is not it when podman was
  // killed too (a signal to the whole process group reaches it as well)
  const statusFile = join(tmpdir(), `lazypull-status-${process.pid}-${randomBytes(6).toString("hex")}`);
  const child = spawn("podman", ["unshare", process.execPath, ...process.execArgv, ...argv.slice(1)], {
    stdio: "inherit",
    env: { ...env, [outerEnv]: String(process.pid), [`${outerEnv}_STATUS`]: statusFile },
  });
  let inner: number | undefined;
  let pending: NodeJS.Signals | undefined;
  const send = (pid: number, sig: NodeJS.Signals) => {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone: podman's exit ends the wait
    }
  };
  let pendingSince = 0;
  const forward = (sig: NodeJS.Signals) => {
    if (sig === "SIGINT" && process.stdin.isTTY) return;
    if (inner !== undefined) send(inner, sig);
    else {
      pending = sig;
      pendingSince = Date.now();
    }
  };
  const signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM"];
  for (const s of signals) process.on(s, forward);
  const finder = setInterval(() => {
    if (inner !== undefined || child.pid === undefined) return;
    inner = findInner(child.pid);
    if (inner !== undefined && pending) send(inner, pending);
    else if (pending && Date.now() - pendingSince > 2000) {
      // our copy cannot be found (no /proc/PID/task/*/children?): end podman instead; its child outlives it,
      // sees this process gone (watchOuter) and stops as on SIGTERM
      child.kill(pending);
      pending = undefined;
    }
  }, 100);
  try {
    const code = await new Promise<number>((resolve, reject) => {
      child.once("error", reject);
      child.once("exit", (c, signal) => resolve(c ?? 128 + (signal === "SIGKILL" ? 9 : signal === "SIGTERM" ? 15 : signal === "SIGINT" ? 2 : 1)));
    });
    // podman killed before our copy finished: whoever waits on us must see our copy's end
    if (inner !== undefined) await waitGone(inner);
    const reported = Number((await readFile(statusFile, "utf8").catch(() => "")).trim() || NaN);
    return Number.isInteger(reported) ? reported : code;
  } finally {
    clearInterval(finder);
    for (const s of signals) process.off(s, forward);
    await rm(statusFile, { force: true });
  }
}

async function isZombie(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return false;
  }
}

/**
 * In the copy `runUnderPodmanUnshare` started: calls `stop` when the process that waits for it dies
 * (SIGKILL gives it no chance to pass anything on), so mounts are undone as on SIGTERM rather than left in
 * podman's namespace, and leaves this process's exit status where the waiting one reads it. Returns the
 * watch's stopper; nothing is watched outside that setup.
 */
export async function watchOuter(
  stop: () => void,
  outerEnv: string,
  env: NodeJS.ProcessEnv = process.env,
  { intervalMs = 500, uid = process.getuid?.() ?? 0 }: { intervalMs?: number; uid?: number } = {},
): Promise<() => void> {
  const outer = Number(env[outerEnv]);
  if (!inRootlessNamespace(env, uid) || !Number.isInteger(outer) || outer <= 0) return () => undefined;
  const statusFile = env[`${outerEnv}_STATUS`];
  if (statusFile) {
    process.on("exit", (code) => {
      try {
        writeFileSync(statusFile, String(code));
      } catch {
        // the waiting process falls back on podman's status
      }
    });
  }
  const started = await processStartTime(outer);
  if (started === null) {
    stop();
    return () => undefined;
  }
  // a dead outer whose parent has not reaped it yet is still in /proc, as a zombie
  return pollUntil(async () => !(await isSameProcessAlive(outer, started)) || (await isZombie(outer)), intervalMs, stop);
}

/**
 * Runs `check` every `intervalMs` (never two at once, never keeping the process alive) until it says
 * true, then calls `then` once. Returns the stopper.
 */
export function pollUntil(check: () => Promise<boolean>, intervalMs: number, then: () => void): () => void {
  let checking = false;
  const timer = setInterval(() => {
    if (checking) return;
    checking = true;
    void check()
      .then((yes) => {
        if (!yes) return;
        clearInterval(timer);
        then();
      })
      .finally(() => {
        checking = false;
      });
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * In a copy `runUnderPodmanUnshare` started, how long a repeated signal is the same request: a signal sent
 * to the whole process group reaches the copy directly and again through the waiting process (0 elsewhere).
 */
export function forwardedSignalWindowMs(outerEnv: string, env: NodeJS.ProcessEnv = process.env): number {
  return env[outerEnv] ? 2000 : 0;
}
