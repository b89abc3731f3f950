import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { resolve } from "node:path";
import { run, type RunResult } from "./run.js";

/** The repository's root (testkit lives at packages/testkit/{src,dist}). */
export const REPO_ROOT = resolve(import.meta.dirname, "../../..");

/** The `lazypull` CLI's entry, run from source. */
export const CLI_ENTRY = "apps/cli/src/main.ts";

/**
 * node's arguments that run a workspace TypeScript file from source: the `@lazypull/source` export
 * condition makes every `@lazypull/*` import resolve to `src/` (no build needed), tsx compiles on load.
 */
export function sourceArgs(entry: string, nodeArgs: readonly string[] = []): string[] {
  return [...nodeArgs, "--conditions=@lazypull/source", "--import", "tsx", resolve(REPO_ROOT, entry)];
}

/** Spawns `entry` (repo-relative or absolute) from source with `args`, in the repo root by default. */
export function spawnSource(entry: string, args: string[], opts: SpawnOptions & { nodeArgs?: readonly string[] } = {}): ChildProcess {
  const { nodeArgs, ...spawnOpts } = opts;
  return spawn(process.execPath, [...sourceArgs(entry, nodeArgs), ...args], { cwd: REPO_ROOT, ...spawnOpts });
}

/** Runs `entry` from source to completion (see `run`). */
export function runSource(entry: string, args: string[], opts: Parameters<typeof run>[2] & { nodeArgs?: readonly string[] } = {}): Promise<RunResult> {
  const { nodeArgs, ...runOpts } = opts;
  return run(process.execPath, [...sourceArgs(entry, nodeArgs), ...args], { cwd: REPO_ROOT, ...runOpts });
}

/** Runs the real `lazypull` CLI from source (as `pnpm lazypull` does) to completion. */
export function runCli(args: string[], opts: Parameters<typeof run>[2] = {}): Promise<RunResult> {
  return runSource(CLI_ENTRY, args, opts);
}
