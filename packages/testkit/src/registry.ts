import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./free-port.js";

export interface RegistryOptions {
  /** htpasswd file contents (bcrypt) to require Basic auth. */
  htpasswd?: string;
  /** Token auth: the registry trusts JWTs signed by `rootCertPem`'s key for `issuer`/`service`. */
  token?: { realm: string; service: string; issuer: string; rootCertPem: string };
  /** Extra lines appended verbatim to the YAML config. */
  extraConfig?: string;
}

export interface RegistryProcess {
  /** `127.0.0.1:PORT` — use as the registry part of an image reference. */
  host: string;
  url: string;
  port: number;
  storageDir: string;
  stop(): Promise<void>;
}

/**
 * Starts the real reference registry (`docker-registry serve`, Distribution 2.8) on a free loopback
 * port with its own storage directory, and waits until `/v2/` answers.
 */
export async function startRegistry(opts: RegistryOptions = {}): Promise<RegistryProcess> {
  const dir = await mkdtemp(join(tmpdir(), "lazypull-registry-"));
  const storageDir = join(dir, "storage");
  const port = await freePort();
  let auth = "";
  if (opts.htpasswd) {
    await writeFile(join(dir, "htpasswd"), opts.htpasswd);
    auth = `auth:\n  htpasswd:\n    realm: lazypull-test\n    path: ${join(dir, "htpasswd")}\n`;
  } else if (opts.token) {
    await writeFile(join(dir, "token-root.pem"), opts.token.rootCertPem);
    auth =
      `auth:\n  token:\n    realm: ${opts.token.realm}\n    service: ${opts.token.service}\n` +
      `    issuer: ${opts.token.issuer}\n    rootcertbundle: ${join(dir, "token-root.pem")}\n`;
  }
  const config =
    `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n` +
    `storage:\n  filesystem:\n    rootdirectory: ${storageDir}\n  delete:\n    enabled: true\n` +
    `http:\n  addr: 127.0.0.1:${port}\n` +
    auth +
    (opts.extraConfig ?? "");
  const configPath = join(dir, "config.yml");
  await writeFile(configPath, config);
  const child: ChildProcess = spawn("docker-registry", ["serve", configPath], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (b: Buffer) => {
    stderr = (stderr + b.toString()).slice(-4000);
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited ${child.exitCode}: ${stderr}`);
    try {
      const res = await fetch(`${url}/v2/`);
      await res.arrayBuffer();
      if (res.status === 200 || res.status === 401) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`docker-registry did not answer on ${url} within 15s: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    host: `127.0.0.1:${port}`,
    url,
    port,
    storageDir,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
        if (child.exitCode === null) child.kill("SIGKILL");
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
