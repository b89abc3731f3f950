import { spawn, type ChildProcess } from "node:child_process";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
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
  /** Serve this storage directory (e.g. another registry's) instead of a fresh one; it is not removed on stop. */
  storageDir?: string;
  /** Serve HTTPS with this certificate and key (PEM files); `clientCAs` makes it require a client certificate. */
  tls?: { certificate: string; key: string; clientCAs?: string[] };
  /** Pull-through cache mode (`proxy.remoteurl`) in front of this registry URL. */
  proxyRemoteUrl?: string;
  /** Keep the access log and info-level log lines, readable with `log()`. */
  accessLog?: boolean;
}

export interface RegistryProcess {
  /** `127.0.0.1:PORT` — use as the registry part of an image reference. */
  host: string;
  url: string;
  port: number;
  storageDir: string;
  /** what the registry printed (access log lines when `accessLog`), most recent 16 MiB */
  log(): string;
  stop(): Promise<void>;
}

/**
 * Starts the real reference registry (`docker-registry serve`, Distribution 2.8) on a free loopback
 * port with its own storage directory, and waits until `/v2/` answers.
 */
export async function startRegistry(opts: RegistryOptions = {}): Promise<RegistryProcess> {
  const dir = await mkdtemp(join(tmpdir(), "lazypull-registry-"));
  const storageDir = opts.storageDir ?? join(dir, "storage");
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
  let tls = "";
  if (opts.tls) {
    tls = `  tls:\n    certificate: ${opts.tls.certificate}\n    key: ${opts.tls.key}\n`;
    if (opts.tls.clientCAs?.length) tls += `    clientcas:\n${opts.tls.clientCAs.map((c) => `      - ${c}\n`).join("")}`;
  }
  const config =
    `version: 0.1\nlog:\n  level: ${opts.accessLog ? "info" : "error"}\n  accesslog:\n    disabled: ${opts.accessLog ? "false" : "true"}\n` +
    `storage:\n  filesystem:\n    rootdirectory: ${storageDir}\n  delete:\n    enabled: true\n` +
    `http:\n  addr: 127.0.0.1:${port}\n` +
    tls +
    (opts.proxyRemoteUrl ? `proxy:\n  remoteurl: ${opts.proxyRemoteUrl}\n` : "") +
    auth +
    (opts.extraConfig ?? "");
  const configPath = join(dir, "config.yml");
  await writeFile(configPath, config);
  const child: ChildProcess = spawn("docker-registry", ["serve", configPath], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  let log = "";
  const keep = (b: Buffer) => {
    stderr = (stderr + b.toString()).slice(-4000);
    if (opts.accessLog) log = (log + b.toString()).slice(-(16 << 20));
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const url = `${opts.tls ? "https" : "http"}://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited ${child.exitCode}: ${stderr}`);
    if (await answers(port, !!opts.tls)) break;
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
    log: () => log,
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

/** Whether the registry answers `/v2/` yet (any HTTP answer; over TLS without checking its certificate). */
function answers(port: number, tls: boolean): Promise<boolean> {
  return new Promise((resolve) => {
    const req = (tls ? httpsRequest : httpRequest)(
      { host: "127.0.0.1", port, path: "/v2/", rejectUnauthorized: false, timeout: 2000 },
      (res) => {
        res.resume();
        resolve(res.statusCode !== undefined);
      },
    );
    // a registry that demands a client certificate ends the handshake: it is listening all the same
    req.on("error", (err: NodeJS.ErrnoException) => resolve(tls && err.code !== "ECONNREFUSED" && err.code !== "ECONNRESET" && err.message !== "socket hang up"));
    req.on("timeout", () => req.destroy());
    req.end();
  });
}
