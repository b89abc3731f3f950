import { spawn, type ChildProcess } from "node:child_process";

export interface TimedRun {
  code: number | null;
  /** ms from spawn to the first byte on stdout (undefined when it printed nothing) */
  firstOutputMs?: number;
  /** ms from spawn to exit */
  exitMs: number;
  stdout: string;
  stderr: string;
  /** `performance.now()` at spawn, to line up with the proxy's request log */
  spawnedAt: number;
}

/** Children still running, so that Ctrl-C can stop them (they clean up their own mounts) before teardown. */
export const liveChildren = new Set<ChildProcess>();

/**
 * Runs a command with stdout/stderr piped and notes when its first stdout byte arrives;
 * `onFirstOutput` runs synchronously at that moment (to snapshot the proxy's counters).
 */
export function spawnTimed(
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number; onFirstOutput?: () => void; uid?: number; gid?: number } = {},
): Promise<TimedRun> {
  return new Promise((resolve, reject) => {
    const spawnedAt = performance.now();
    const child = spawn(cmd, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ["ignore", "pipe", "pipe"], uid: opts.uid, gid: opts.gid });
    liveChildren.add(child);
    let firstOutputMs: number | undefined;
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => {
      if (firstOutputMs === undefined) {
        firstOutputMs = performance.now() - spawnedAt;
        opts.onFirstOutput?.();
      }
      out.push(b);
    });
    child.stderr.on("data", (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill("SIGTERM"), opts.timeoutMs ?? 15 * 60_000);
    child.on("error", (e) => {
      clearTimeout(timer);
      liveChildren.delete(child);
      reject(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      liveChildren.delete(child);
      resolve({
        code,
        firstOutputMs,
        exitMs: performance.now() - spawnedAt,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
        spawnedAt,
      });
    });
  });
}

/** Throws with the command's stderr tail when it did not exit 0. */
export function check(what: string, r: TimedRun): TimedRun {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}: ${r.stderr.trim().slice(-1500)}`);
  return r;
}
