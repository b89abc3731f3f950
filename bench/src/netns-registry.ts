import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface NetnsRegistry {
  /** where it listens, inside the namespace */
  address: { host: string; port: number };
  stop(): Promise<void>;
}

/**
 * The reference registry (`docker-registry serve`) inside the benchmark's network namespace, so
 * every byte it serves crosses the shaped veth. `ip netns exec` execs the registry itself, so the
 * child's pid is the registry's.
 */
export async function startNetnsRegistry(netns: string, host: string, port = 5000): Promise<NetnsRegistry> {
  const dir = await mkdtemp(join(tmpdir(), "lazypull-bench-registry-"));
  const config =
    `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n` +
    `storage:\n  filesystem:\n    rootdirectory: ${join(dir, "storage")}\n  delete:\n    enabled: true\n` +
    `http:\n  addr: ${host}:${port}\n`;
  await writeFile(join(dir, "config.yml"), config);
  const child = spawn("ip", ["netns", "exec", netns, "docker-registry", "serve", join(dir, "config.yml")], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`docker-registry in ${netns} exited ${child.exitCode}: ${stderr}`);
    }
    try {
      const res = await fetch(`http://${host}:${port}/v2/`);
      await res.arrayBuffer();
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`docker-registry in ${netns} did not answer within 15s: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { address: { host, port }, stop };
}
