/**
 * Runs podman in the foreground. stdio is inherited (so `-it` works) unless captured for tests;
 * hooked signals are forwarded to podman (which proxies them to the container), and a container
 * that ignores them is killed after `stopTimeoutMs` or at the second signal.
 */
import { spawn } from "node:child_process";
import { constants } from "node:os";
import type { HostConfig } from "./config.js";
import { childCommand } from "./child-fds.js";
import { interceptSignals } from "./cleanup-stack.js";
import { LaunchError } from "./errors.js";
import { exec } from "./exec.js";

export interface RunContainerOptions {
  podman: HostConfig["podman"];
  /** from `buildPodmanArgs` */
  args: string[];
  /** the `--name` in `args`; needed to kill a container that ignores a forwarded signal */
  containerName?: string;
  /** `inherit` (default) or `capture` stdout/stderr (stdin from `input`) */
  stdio?: "inherit" | "capture";
  input?: string | Buffer;
}

export interface RunContainerResult {
  /** the container's exit code (podman's); 128+N when podman itself died of signal N */
  exitCode: number;
  /** the first signal received while it ran, if any */
  signal?: NodeJS.Signals;
  /** true when the container had to be killed after a signal */
  killed: boolean;
  stdout?: string;
  stderr?: string;
}

export async function runContainer(opts: RunContainerOptions): Promise<RunContainerResult> {
  const capture = opts.stdio === "capture";
  const podman = await childCommand(opts.podman.binary, opts.args);
  return new Promise((resolve, reject) => {
    const child = spawn(podman.cmd, podman.args, { stdio: capture ? ["pipe", "pipe", "pipe"] : "inherit" });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    if (capture) {
      child.stdout!.on("data", (b: Buffer) => out.push(b));
      child.stderr!.on("data", (b: Buffer) => err.push(b));
      child.stdin!.on("error", () => undefined); // podman may exit before reading its input
      child.stdin!.end(opts.input ?? "");
    }
    let firstSignal: NodeJS.Signals | undefined;
    let killed = false;
    let timer: NodeJS.Timeout | undefined;
    const kill = (): void => {
      if (killed || child.exitCode !== null) return;
      killed = true;
      if (opts.containerName) {
        void exec(opts.podman.binary, [...opts.podman.globalArgs, "kill", "--signal", "KILL", opts.containerName], { timeoutMs: 30_000 });
      } else child.kill("SIGKILL");
    };
    const release = interceptSignals((sig) => {
      if (firstSignal === undefined) {
        firstSignal = sig;
        child.kill(sig);
        timer = setTimeout(kill, opts.podman.stopTimeoutMs);
      } else kill();
    });
    const done = (): void => {
      release();
      if (timer) clearTimeout(timer);
    };
    child.on("error", (e: NodeJS.ErrnoException) => {
      done();
      reject(
        e.code === "ENOENT"
          ? new LaunchError("LAUNCH_BINARY_NOT_FOUND", `${opts.podman.binary} not found (config podman.binary)`, { binary: opts.podman.binary }, { cause: e })
          : new LaunchError("LAUNCH_SPAWN_FAILED", `cannot start ${opts.podman.binary}: ${e.message}`, { binary: opts.podman.binary }, { cause: e }),
      );
    });
    child.on("close", (code, signal) => {
      // keep intercepting signals until a stray container is dealt with
      void settle(code, signal).then(resolve, reject).finally(done);
    });
    const settle = async (code: number | null, signal: NodeJS.Signals | null): Promise<RunContainerResult> => {
      let exitCode = code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0);
      // a signal that reaches podman before its signal proxy is up makes it exit and leave the
      // container running; find such a container and kill it rather than unmount under it
      if (firstSignal && opts.containerName && (await isRunning(opts.podman, opts.containerName))) {
        killed = true;
        await exec(opts.podman.binary, [...opts.podman.globalArgs, "kill", "--signal", "KILL", opts.containerName], { timeoutMs: 30_000 });
        await exec(opts.podman.binary, [...opts.podman.globalArgs, "wait", opts.containerName], { timeoutMs: 30_000 });
      }
      // podman 4.3 sometimes loses the exit code of a --rm container killed under it and says 0
      // (containers/podman#9751, #25479); a container we SIGKILLed did not succeed
      if (killed && exitCode === 0) exitCode = 128 + constants.signals.SIGKILL;
      return {
        exitCode,
        ...(firstSignal ? { signal: firstSignal } : {}),
        killed,
        ...(capture ? { stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() } : {}),
      };
    };
  });
}

async function isRunning(podman: HostConfig["podman"], name: string): Promise<boolean> {
  const res = await exec(podman.binary, [...podman.globalArgs, "container", "inspect", "--format", "{{.State.Running}}", name], { timeoutMs: 30_000 });
  return res.code === 0 && res.stdout.trim() === "true";
}
