import type { ChildProcessByStdio } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { CLI_ENTRY, REPO_ROOT, runCli, sourceArgs, spawnSource, type RunResult } from "@lazypull/testkit";

export const repoRoot = REPO_ROOT;

/** node's arguments for the real `lazypull` CLI from source, then `args` (for `script`, `sh -c`, …). */
export function cliArgs(args: string[]): string[] {
  return [...sourceArgs(CLI_ENTRY), ...args];
}

/** Runs the real `lazypull` CLI from source as a child process (the way `pnpm lazypull` does). */
export function lazypull(args: string[], opts: { env?: NodeJS.ProcessEnv; allowFail?: boolean; timeoutMs?: number } = {}): Promise<RunResult> {
  return runCli(args, { env: { ...process.env, ...opts.env }, allowFail: opts.allowFail, timeoutMs: opts.timeoutMs ?? 240_000 });
}

/** Spawns the CLI without waiting, for signal tests. */
export function spawnLazypull(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcessByStdio<null, Readable, Readable> {
  return spawnSource(CLI_ENTRY, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] }) as ChildProcessByStdio<null, Readable, Readable>;
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

export type OverlayKind = "kernel" | "fuse-overlayfs";
/**
 * The overlays the e2e suite runs under: both by default (CI), or those listed in
 * `LAZYPULL_E2E_OVERLAYS` (comma-separated), e.g. to look at one while developing.
 */
export const OVERLAY_KINDS: OverlayKind[] = (process.env.LAZYPULL_E2E_OVERLAYS ?? "kernel,fuse-overlayfs")
  .split(",")
  .map((k) => {
    if (k !== "kernel" && k !== "fuse-overlayfs") throw new Error(`LAZYPULL_E2E_OVERLAYS: unknown overlay ${k}`);
    return k;
  });

/**
 * The environment of a lazypull child that must stack with `kind` and nothing else: state and cache
 * under `work`, and a host config (`LAZYPULL_CONFIG`) saying `overlay: kind` — `kernel`, not `auto`,
 * so a kernel mount that fails is an error instead of a silent fuse-overlayfs run.
 */
export function overlayEnv(work: string, kind: OverlayKind): NodeJS.ProcessEnv {
  const config = join(work, `config-${kind}.json`);
  mkdirSync(work, { recursive: true });
  writeFileSync(config, JSON.stringify({ overlay: kind }));
  return { LAZYPULL_STATE_DIR: join(work, "state"), LAZYPULL_CACHE_DIR: join(work, "cache"), LAZYPULL_CONFIG: config };
}

/**
 * `lazypull mount REF TARGET` in the background, resolved once it says it is mounted: the child, its
 * stderr so far (with the overlay it used), and a promise of its exit code.
 */
export async function startLazyMount(ref: string, target: string, env: NodeJS.ProcessEnv, timeoutMs = 120_000) {
  const child = spawnLazypull(["mount", ref, target], env);
  let err = "";
  child.stderr.on("data", (b: Buffer) => (err += b.toString()));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  const deadline = Date.now() + timeoutMs;
  while (!err.includes("mounted at")) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`mount did not come up: ${err}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, stderr: () => err, exited };
}
