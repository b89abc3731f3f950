import { createHash, createSign, randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "@lazypull/testkit";
import type { RegistryClient } from "../src/index.js";
import { MediaType } from "../src/index.js";

export const sha256 = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

export interface TestImage {
  layers: { digest: string; bytes: Buffer }[];
  config: Buffer;
  configDigest: string;
  manifest: Buffer;
  manifestDigest: string;
}

/** A small image with random layer bytes (not real tarballs: the registry does not look inside). */
export function makeImage(layerSizes: number[], arch = "amd64"): TestImage {
  const layers = layerSizes.map((n) => {
    const bytes = randomBytes(n);
    return { digest: sha256(bytes), bytes };
  });
  const config = Buffer.from(
    JSON.stringify({ architecture: arch, os: "linux", config: { Cmd: ["sh"] }, rootfs: { type: "layers", diff_ids: layers.map((l) => l.digest) } }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: sha256(config), size: config.length },
      layers: layers.map((l) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: l.digest, size: l.bytes.length })),
    }),
  );
  return { layers, config, configDigest: sha256(config), manifest, manifestDigest: sha256(manifest) };
}

export async function pushImage(client: RegistryClient, ref: string, img: TestImage): Promise<string> {
  for (const l of img.layers) await client.pushBlob(ref, l.digest, l.bytes.length, l.bytes);
  await client.pushBlob(ref, img.configDigest, img.config.length, img.config);
  return client.pushManifest(ref, img.manifest, MediaType.OciManifest);
}

export interface Front {
  url: string;
  host: string;
  /** every request the front saw: method, path and headers */
  seen: { method: string; path: string; headers: IncomingMessage["headers"] }[];
  close(): Promise<void>;
}

/** Copies a request to `target` (host:port) and the answer back, optionally with changed request headers. */
export function forward(
  target: string,
  req: IncomingMessage,
  res: ServerResponse,
  editHeaders?: (h: IncomingMessage["headers"]) => void,
  path = req.url,
  /** rewrite the upstream body (same length keeps Content-Length true), e.g. to corrupt it */
  editBody?: (body: Buffer) => Buffer,
): void {
  const [hostname, port] = target.split(":");
  // the Host header stays the front's, so the registry builds Location URLs that point back at the front
  const headers = { ...req.headers };
  editHeaders?.(headers);
  const up = httpRequest({ hostname, port: Number(port), method: req.method, path, headers }, (ur) => {
    res.writeHead(ur.statusCode ?? 502, ur.headers);
    if (!editBody) return void ur.pipe(res);
    const parts: Buffer[] = [];
    ur.on("data", (b: Buffer) => parts.push(b));
    ur.on("end", () => res.end(editBody(Buffer.concat(parts))));
  });
  up.on("error", () => res.destroy());
  req.pipe(up);
}

/** An HTTP server on a free loopback port; `handle` decides what each request gets. */
export async function startFront(handle: (req: IncomingMessage, res: ServerResponse, front: Front) => void): Promise<Front> {
  const seen: Front["seen"] = [];
  const front = { seen } as Front;
  const server: Server = createServer((req, res) => {
    seen.push({ method: req.method ?? "", path: req.url ?? "", headers: req.headers });
    handle(req, res, front);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  front.host = `127.0.0.1:${port}`;
  front.url = `http://${front.host}`;
  front.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return front;
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString("base64url");

export interface TokenServer extends Front {
  realm: string;
  service: string;
  issuer: string;
  certPem: string;
  /** scopes asked for, one entry per token request, with the user that asked ("" for anonymous) */
  issued: { user: string; scopes: string[] }[];
}

/**
 * A Docker token server: signs RS256 JWTs with a self-signed certificate (made by `openssl req`);
 * the JWT header carries the certificate in `x5c`, which Distribution checks against its rootcertbundle.
 * Users in `users` get what they ask for; anonymous callers get pull only.
 */
export async function startTokenServer(users: Record<string, string>, opts: { expiresIn?: number } = {}): Promise<TokenServer> {
  const dir = await mkdtemp(join(tmpdir(), "rc-token-"));
  let key: string;
  let certPem: string;
  try {
    await run("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(dir, "k.pem"), "-out", join(dir, "c.pem"), "-days", "2", "-subj", "/CN=lazypull-test-token"]);
    key = await readFile(join(dir, "k.pem"), "utf8");
    certPem = await readFile(join(dir, "c.pem"), "utf8");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const der = Buffer.from(certPem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64");
  const service = "lazypull-test-registry";
  const issuer = "lazypull-test-issuer";
  const issued: TokenServer["issued"] = [];
  const front = await startFront((req, res) => {
    const u = new URL(req.url ?? "/", "http://x");
    let user = "";
    const auth = req.headers.authorization;
    if (auth?.startsWith("Basic ")) {
      const [name, pw] = Buffer.from(auth.slice(6), "base64").toString().split(":");
      if (!name || users[name] !== pw) {
        res.writeHead(401).end();
        return;
      }
      user = name;
    }
    const scopes = u.searchParams.getAll("scope");
    issued.push({ user, scopes });
    const access = scopes.map((s) => {
      const [type, name, actions] = s.split(":");
      const asked = (actions ?? "").split(",");
      return { type, name, actions: user ? asked : asked.filter((a) => a === "pull") };
    });
    const now = Math.floor(Date.now() / 1000);
    const exp = opts.expiresIn ?? 300;
    const head = b64url(JSON.stringify({ alg: "RS256", typ: "JWT", x5c: [der.toString("base64")] }));
    const claims = b64url(JSON.stringify({ iss: issuer, sub: user, aud: service, exp: now + exp, nbf: now - 10, iat: now, jti: randomUUID(), access }));
    const sig = createSign("RSA-SHA256").update(`${head}.${claims}`).sign(key);
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ token: `${head}.${claims}.${b64url(sig)}`, expires_in: exp, issued_at: new Date().toISOString() }));
  });
  return Object.assign(front, { realm: `${front.url}/token`, service, issuer, certPem, issued });
}
