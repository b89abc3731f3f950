import { spawn } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { run, type RunResult } from "@lazypull/testkit";

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..");
const cliMain = join(repoRoot, "apps", "cli", "src", "main.ts");

export function cliArgs(args: string[]): string[] {
  return ["--conditions=@lazypull/source", "--import", "tsx", cliMain, ...args];
}

/** Runs the real `lazypull` CLI from source as a child process (the way `pnpm lazypull` does). */
export function lazypull(args: string[], opts: { env?: NodeJS.ProcessEnv; allowFail?: boolean; timeoutMs?: number } = {}): Promise<RunResult> {
  return run(process.execPath, cliArgs(args), {
    cwd: repoRoot,
    env: { ...process.env, ...opts.env },
    allowFail: opts.allowFail,
    timeoutMs: opts.timeoutMs ?? 240_000,
  });
}

/** Spawns the CLI without waiting, for signal tests. */
export function spawnLazypull(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawn(process.execPath, cliArgs(args), { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
}

/** Mounts in /proc/mounts that lazypull (or its fuse-overlayfs) left behind under the given prefix. */
export async function mountsUnder(prefix: string): Promise<string[]> {
  const text = await readFile("/proc/mounts", "utf8");
  return text
    .split("\n")
    .map((l) => l.split(" "))
    .filter((f) => f.length > 2 && (f[1] ?? "").startsWith(prefix))
    .map((f) => `${f[0]} ${f[1]} ${f[2]}`);
}

/** Resolves once the child's stdout contains `text`; rejects after `timeoutMs` with what it printed. */
export function waitForStdout(child: { stdout: NodeJS.ReadableStream }, text: string, timeoutMs = 120_000): Promise<void> {
  let out = "";
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "${text}" on stdout within ${timeoutMs} ms: ${out}`)), timeoutMs);
    child.stdout.on("data", (b: Buffer) => {
      out += b.toString();
      if (out.includes(text)) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

/**
 * Processes whose command line mentions `text`, after waiting up to `timeoutMs` for them to go
 * (each as "pid state command"; state D means stuck in the kernel).
 */
export async function processesMentioning(text: string, timeoutMs: number): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found: string[] = [];
    for (const pid of (await readdir("/proc")).filter((n) => /^\d+$/.test(n) && Number(n) !== process.pid)) {
      const cmd = (await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")).replaceAll("\0", " ").trim();
      if (!cmd.includes(text)) continue;
      const state = /^State:\s+(\S)/m.exec(await readFile(`/proc/${pid}/status`, "utf8").catch(() => ""))?.[1] ?? "?";
      found.push(`${pid} ${state} ${cmd.slice(0, 200)}`);
    }
    if (found.length === 0 || Date.now() > deadline) return found;
    await new Promise((r) => setTimeout(r, 250));
  }
}
