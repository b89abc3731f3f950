/**
 * Async process helpers. The launcher usually runs inside a process that also serves the FUSE
 * lower layers, so nothing here may block the event loop (no `spawnSync`/`execSync`).
 */
import { spawn } from "node:child_process";
import { childCommand } from "./child-fds.js";

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** the binary was not found */
  enoent: boolean;
}

export async function exec(cmd: string, args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<ExecResult> {
  const run = await childCommand(cmd, args);
  return new Promise((resolve) => {
    const child = spawn(run.cmd, run.args, { stdio: ["ignore", "pipe", "pipe"], env: opts.env ?? process.env, ...(opts.cwd ? { cwd: opts.cwd } : {}) });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    const timer = opts.timeoutMs ? setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs) : undefined;
    let enoent = false;
    child.on("error", (e: NodeJS.ErrnoException) => {
      enoent = e.code === "ENOENT";
      err.push(Buffer.from(e.message));
    });
    child.on("close", (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), enoent });
    });
  });
}

