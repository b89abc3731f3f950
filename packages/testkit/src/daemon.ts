import { spawn, type ChildProcess } from "node:child_process";
import { request } from "node:http";
import { join } from "node:path";
import { REPO_ROOT, spawnSource } from "./source.js";

export interface DaemonProcess {
  child: ChildProcess;
  pid: number;
  socket: string;
  /** stderr so far (pino JSON lines) */
  log(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** true when lazypulld answers `GET /healthz` on the socket (any status) within `timeoutMs` */
function answers(socketPath: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: "/healthz", timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(false));
    req.end();
  });
}

/** Spawns a real `lazypulld` (from source, or its built `dist/main.js`) and waits until it answers on its socket. */
export async function spawnDaemon(args: {
  socket: string;
  root: string;
  config?: string;
  /**
   * podman's layer store: default `<root>-store`, so test daemons never share (or take over) the
   * host's default store; false: none
   */
  store?: string | false;
  extra?: string[];
  /** node's own flags (default: none, as the lazypulld bin runs) */
  nodeArgs?: readonly string[];
  /** run the built `dist/main.js` (as installed) instead of the sources through tsx */
  dist?: boolean;
  /** added to this process's environment */
  env?: NodeJS.ProcessEnv;
}): Promise<DaemonProcess> {
  const argv = ["--socket", args.socket, "--root", args.root];
  if (args.config) argv.push("--config", args.config);
  if (args.store === false) argv.push("--no-store");
  else argv.push("--store", args.store ?? `${args.root}-store`);
  argv.push(...(args.extra ?? []));
  const nodeArgs = args.nodeArgs ?? [];
  const env = { ...process.env, ...args.env };
  const stdio: ["ignore", "ignore", "pipe"] = ["ignore", "ignore", "pipe"];
  const child = args.dist
    ? spawn(process.execPath, [...nodeArgs, join(REPO_ROOT, "apps/daemon/dist/main.js"), ...argv], { cwd: REPO_ROOT, env, stdio })
    : spawnSource("apps/daemon/src/main.ts", argv, { env, stdio, nodeArgs });
  let stderr = "";
  child.stderr!.on("data", (b: Buffer) => {
    stderr = (stderr + b.toString()).slice(-200_000);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once("exit", (code, signal) => r({ code, signal })));
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`lazypulld exited ${child.exitCode ?? child.signalCode}: ${stderr}`);
    if (await answers(args.socket, 500)) break;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`lazypulld did not answer on ${args.socket} within 90s: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, pid: child.pid!, socket: args.socket, log: () => stderr, exited };
}
