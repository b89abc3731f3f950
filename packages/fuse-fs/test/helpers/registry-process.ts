import { spawn, type ChildProcess } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";

/**
 * A second docker-registry serving an existing storage directory on a fixed port, which a test can
 * kill (SIGKILL, mid-transfer) and start again on the same port and storage.
 */
export class RestartableRegistry {
  private child: ChildProcess | undefined;

  constructor(
    private readonly storageDir: string,
    readonly port: number,
    private readonly configDir: string,
  ) {}

  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const config = join(this.configDir, `registry-${this.port}.yml`);
    await writeFile(
      config,
      `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n` +
        `storage:\n  filesystem:\n    rootdirectory: ${this.storageDir}\n` +
        `http:\n  addr: 127.0.0.1:${this.port}\n`,
    );
    const child = spawn("docker-registry", ["serve", config], { stdio: "ignore" });
    this.child = child;
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`docker-registry exited ${child.exitCode}`);
      try {
        const res = await fetch(`http://${this.host}/v2/`);
        await res.arrayBuffer();
        if (res.ok) return;
      } catch {
        // not yet listening
      }
      if (Date.now() > deadline) throw new Error(`docker-registry did not start on ${this.host}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async kill(): Promise<void> {
    const c = this.child;
    this.child = undefined;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once("exit", r));
    c.kill("SIGKILL");
    await exited;
  }
}
