// Registries as people run them, on real parts: docker-registry over TLS with a CA made here (trusted through
// certs.d, untrusted, skipped with --tls-verify=false, demanding a client certificate), a docker-registry in
// pull-through proxy mode configured as a registries.conf mirror (ranges go to it; when it stops, the origin
// answers with the same bytes), and an htpasswd registry whose password comes from a credential helper.
// Every registry here serves the suite's storage, so the converted Debian image is everywhere at once.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import bcrypt from "bcryptjs";
import { makeTestPki, run, startRegistry, type RegistryProcess, type TestPki } from "@lazypull/testkit";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { cliArgs, lazypull, mountsUnder, repoRoot, spawnLazypull } from "./helpers.js";

const storageDir = inject("registryStorage");
const origin = inject("registryHost");
const lazyRef = inject("lazyRef");
/** the converted image's repository and tag, on whichever registry */
const repoTag = lazyRef.slice(origin.length + 1);

let work: string;
let pki: TestPki;
const registries: RegistryProcess[] = [];
const certsDirs: string[] = [];

/** Fresh state and cache per call, so every command really talks to its registry. */
async function isolatedEnv(extra: NodeJS.ProcessEnv = {}): Promise<NodeJS.ProcessEnv> {
  const dir = await mkdtemp(join(work, "env-"));
  // podman refuses a CONTAINERS_REGISTRIES_CONF that does not exist; an empty one is no configuration
  await writeFile(join(dir, "registries.conf"), "");
  return {
    LAZYPULL_STATE_DIR: join(dir, "state"),
    LAZYPULL_CACHE_DIR: join(dir, "cache"),
    // no lazypulld: these flags and files are this process's
    LAZYPULL_SOCKET: join(dir, "no-daemon.sock"),
    CONTAINERS_REGISTRIES_CONF: join(dir, "registries.conf"),
    ...extra,
  };
}

async function serve(opts: Parameters<typeof startRegistry>[0]): Promise<RegistryProcess> {
  const r = await startRegistry({ storageDir, ...opts });
  registries.push(r);
  return r;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "lazypull-e2e-registries-"));
  pki = await makeTestPki(join(work, "pki"));
});

afterAll(async () => {
  await Promise.all(registries.map((r) => r.stop()));
  for (const d of certsDirs) await rm(d, { recursive: true, force: true });
  await rm(work, { recursive: true, force: true });
});

describe("a registry serving TLS with its own CA", () => {
  it("should be trusted through /etc/containers/certs.d/HOST:PORT and run the image", async () => {
    const tls = await serve({ tls: { certificate: pki.serverCert, key: pki.serverKey } });
    const dir = `/etc/containers/certs.d/${tls.host}`;
    certsDirs.push(dir);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "ca.crt"), await readFile(pki.caCert));
    const res = await lazypull(["run", "--rm", "--stats", `${tls.host}/${repoTag}`, "cat", "/etc/os-release"], { env: await isolatedEnv() });
    expect(res.stdout).toContain('ID=debian');
    expect(res.stderr).toContain(`from ${tls.host} (`);
  });

  it("should refuse a certificate from an unknown authority, naming the host and the fix", async () => {
    const tls = await serve({ tls: { certificate: pki.serverCert, key: pki.serverKey } });
    const res = await lazypull(["cat", `${tls.host}/${repoTag}`, "/etc/os-release"], { env: await isolatedEnv(), allowFail: true });
    expect(res.code).not.toBe(0);
    expect(res.stdout).toBe("");
    expect(res.stderr).toContain("REGISTRY_TLS_UNKNOWN_AUTHORITY");
    expect(res.stderr).toContain(tls.host);
    expect(res.stderr).toContain("certs.d");
  });

  it("should read it without verification under --tls-verify=false", async () => {
    const tls = await serve({ tls: { certificate: pki.serverCert, key: pki.serverKey } });
    const res = await lazypull(["cat", "--tls-verify=false", `${tls.host}/${repoTag}`, "/etc/os-release"], { env: await isolatedEnv() });
    expect(res.stdout).toContain("ID=debian");
  });

  it("should present the client certificate from --cert-dir to a registry that demands one", async () => {
    const tls = await serve({ tls: { certificate: pki.serverCert, key: pki.serverKey, clientCAs: [pki.caCert] } });
    const withPair = join(work, "cert-dir-pair");
    const caOnly = join(work, "cert-dir-ca");
    for (const d of [withPair, caOnly]) {
      await mkdir(d, { recursive: true });
      await writeFile(join(d, "ca.crt"), await readFile(pki.caCert));
    }
    await writeFile(join(withPair, "client.cert"), await readFile(pki.clientCert));
    await writeFile(join(withPair, "client.key"), await readFile(pki.clientKey));

    const ok = await lazypull(["cat", "--cert-dir", withPair, `${tls.host}/${repoTag}`, "/etc/os-release"], { env: await isolatedEnv() });
    expect(ok.stdout).toContain("ID=debian");

    const refused = await lazypull(["cat", "--cert-dir", caOnly, `${tls.host}/${repoTag}`, "/etc/os-release"], { env: await isolatedEnv(), allowFail: true });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/REGISTRY_TLS_\w+/);
    expect(refused.stderr).toContain(tls.host);
  });
});

/** `GET /v2/<repo>/blobs/…` lines of a docker-registry access log sent by lazypull (its User-Agent). */
function lazypullBlobGets(log: string, repository: string): string[] {
  return log.split("\n").filter((l) => l.includes(`"GET /v2/${repository}/blobs/sha256:`) && l.includes('"lazypull/'));
}

describe("a pull-through cache configured as a registries.conf mirror", () => {
  const repository = repoTag.slice(0, repoTag.indexOf(":"));

  async function originAndMirror() {
    // an origin of our own (same storage as the suite's registry) so its access log is ours to count
    const up = await serve({ accessLog: true });
    const mirror = await serve({ accessLog: true, proxyRemoteUrl: up.url, storageDir: join(await mkdtemp(join(work, "mirror-")), "storage") });
    const env = await isolatedEnv();
    await writeFile(env.CONTAINERS_REGISTRIES_CONF!, `[[registry]]\nlocation = "${up.host}"\n\n[[registry.mirror]]\nlocation = "${mirror.host}"\n`);
    return { up, mirror, env };
  }

  it("should send the run's range requests to the mirror, not the origin", async () => {
    const { up, mirror, env } = await originAndMirror();
    const res = await lazypull(["run", "--rm", "--stats", `${up.host}/${repoTag}`, "cat", "/etc/os-release"], { env });
    expect(res.stdout).toContain("ID=debian");
    expect(lazypullBlobGets(mirror.log(), repository).length).toBeGreaterThan(0);
    expect(lazypullBlobGets(up.log(), repository)).toEqual([]);
    expect(res.stderr).toContain(`from ${mirror.host} (`);
    expect(res.stderr).not.toContain(`${up.host} (`);
  });

  it("should fall back to the origin with the same bytes when the mirror stops mid-run", async () => {
    const { up, mirror, env } = await originAndMirror();
    const target = join(work, "mirror-mount");
    await mkdir(target, { recursive: true });
    const child = spawnLazypull(["mount", "--prefetch", "none", `${up.host}/${repoTag}`, target], env);
    let stderr = "";
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    try {
      await waitForStderr(() => stderr, "mounted at", 120_000);
      expect(await readFile(join(target, "etc/os-release"), "utf8")).toContain("ID=debian");
      expect(lazypullBlobGets(mirror.log(), repository).length).toBeGreaterThan(0);
      const originBefore = lazypullBlobGets(up.log(), repository).length;
      await mirror.stop();

      const served = await readFile(join(target, "usr/bin/ls"));
      expect(lazypullBlobGets(up.log(), repository).length).toBeGreaterThan(originBefore);
      // the same file straight from the origin, with no mirror configured (bytes through a file: stdout is text)
      const copy = join(work, "ls-from-origin");
      const quoted = [process.execPath, ...cliArgs(["cat", `${up.host}/${repoTag}`, "/usr/bin/ls"])].map((a) => `'${a}'`).join(" ");
      await run("sh", ["-c", `${quoted} > '${copy}'`], { env: { ...process.env, ...(await isolatedEnv()) }, cwd: repoRoot });
      const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
      expect(served.length).toBeGreaterThan(10_000);
      expect(sha(served)).toBe(sha(await readFile(copy)));
    } finally {
      await lazypull(["umount", target], { env, allowFail: true });
      await new Promise<void>((r) => (child.exitCode !== null ? r() : child.once("exit", () => r())));
    }
    expect(await mountsUnder(target)).toEqual([]);
  });
});

describe("a mirror that sends wrong bytes", () => {
  it("should be passed over for the registry once a chunk fails its check, and the file read is right", async () => {
    const up = await serve({ accessLog: true });
    // a "mirror" in front of the origin that flips one byte of every range answer
    const mirror = createServer((req, res) => {
      const fwd = httpRequest({ host: "127.0.0.1", port: up.port, path: req.url, method: req.method, headers: { ...req.headers, host: up.host } }, (r) => {
        const parts: Buffer[] = [];
        r.on("data", (b: Buffer) => parts.push(b));
        r.on("end", () => {
          const body = Buffer.concat(parts);
          if (r.statusCode === 206 && body.length > 0) body[body.length >> 1]! ^= 0xff;
          res.writeHead(r.statusCode ?? 502, r.headers);
          res.end(body);
        });
      });
      req.pipe(fwd);
    });
    await new Promise<void>((r) => mirror.listen(0, "127.0.0.1", r));
    const mirrorHost = `127.0.0.1:${(mirror.address() as AddressInfo).port}`;
    try {
      const env = await isolatedEnv();
      await writeFile(env.CONTAINERS_REGISTRIES_CONF!, `[[registry]]\nlocation = "${up.host}"\n\n[[registry.mirror]]\nlocation = "${mirrorHost}"\n`);
      const res = await lazypull(["run", "--rm", "--stats", `${up.host}/${repoTag}`, "cat", "/etc/os-release"], { env });
      expect(res.stdout).toContain("ID=debian");
      // the mirror answered first; after its bytes failed a check, the origin served the rest
      expect(res.stderr).toMatch(new RegExp(`from [^;]*${up.host.replace(/\./g, "\\.")} \\(`));
      expect(lazypullBlobGets(up.log(), repoTag.slice(0, repoTag.indexOf(":"))).length).toBeGreaterThan(0);
    } finally {
      await new Promise((r) => mirror.close(r));
    }
  });
});

function waitForStderr(text: () => string, want: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (text().includes(want)) resolve();
      else if (Date.now() > deadline) reject(new Error(`no "${want}" on stderr within ${timeoutMs} ms: ${text()}`));
      else setTimeout(tick, 50);
    };
    tick();
  });
}

describe("a registry whose password comes from a credential helper", () => {
  let reg: RegistryProcess;
  let bin: string;
  beforeAll(async () => {
    reg = await serve({ htpasswd: `alice:${bcrypt.hashSync("s3cret", 4)}\n` });
    bin = join(work, "bin");
    await mkdir(bin, { recursive: true });
    const helper = join(bin, "docker-credential-lazypulltest");
    // the protocol: `get` with the server on stdin, JSON on stdout
    await writeFile(helper, `#!/bin/sh\n[ "$1" = get ] || exit 1\nread server\nprintf '{"ServerURL":"%s","Username":"alice","Secret":"s3cret"}' "$server"\n`);
    await chmod(helper, 0o755);
  });

  it("should read the image with the helper's credentials", async () => {
    const env = await isolatedEnv({ PATH: `${bin}:${process.env.PATH}` });
    const authFile = join(work, "auth-helper.json");
    await writeFile(authFile, JSON.stringify({ credHelpers: { [reg.host]: "lazypulltest" } }));
    const res = await lazypull(["cat", `${reg.host}/${repoTag}`, "/etc/os-release"], { env: { ...env, REGISTRY_AUTH_FILE: authFile } });
    expect(res.stdout).toContain("ID=debian");
  });

  it("should name a configured helper that is not installed", async () => {
    const env = await isolatedEnv({ PATH: `${bin}:${process.env.PATH}` });
    const authFile = join(work, "auth-missing.json");
    await writeFile(authFile, JSON.stringify({ credHelpers: { [reg.host]: "lazypullmissing" } }));
    expect(existsSync(join(bin, "docker-credential-lazypullmissing"))).toBe(false);
    const res = await lazypull(["cat", `${reg.host}/${repoTag}`, "/etc/os-release"], { env: { ...env, REGISTRY_AUTH_FILE: authFile }, allowFail: true });
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/REGISTRY_CREDENTIAL_HELPER_\w+/);
    expect(res.stderr).toContain("docker-credential-lazypullmissing");
  });
});
