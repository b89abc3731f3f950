import { mkdtemp, rm, writeFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import bcrypt from "bcryptjs";
import { startRegistry, type RegistryProcess } from "@lazypull/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RegistryClient, type RegistryClientOptions } from "../src/index.js";
import { forward, makeImage, pushImage, startFront, startTokenServer, type Front, type TokenServer } from "./helpers.js";

describe("htpasswd Basic auth", () => {
  let reg: RegistryProcess;
  let dir: string;
  beforeAll(async () => {
    reg = await startRegistry({ htpasswd: `alice:${bcrypt.hashSync("s3cret", 4)}\n` });
    dir = await mkdtemp(join(tmpdir(), "rc-auth-"));
  });
  afterAll(async () => {
    await reg?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("should push and pull with credentials from a docker config.json (base64 auth)", async () => {
    const file = join(dir, "config.json");
    await writeFile(file, JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from("alice:s3cret").toString("base64") } } }));
    const client = new RegistryClient({ authFiles: [join(dir, "absent.json"), file], registriesConf: false });
    try {
      const img = makeImage([500, 600]);
      const ref = `${reg.host}/basic/app:1`;
      expect(await pushImage(client, ref, img)).toEqual(img.manifestDigest);
      expect((await client.resolve(ref)).manifestDigest).toEqual(img.manifestDigest);
      expect(await client.fetchRange({ registry: reg.host, repository: "basic/app" }, img.layers[1]!.digest, { offset: 10, length: 5 })).toEqual(
        img.layers[1]!.bytes.subarray(10, 15),
      );
    } finally {
      await client.close();
    }
  });

  it("should fail with REGISTRY_UNAUTHORIZED without or with wrong credentials", async () => {
    for (const opts of [{}, { credentials: { [reg.host]: { username: "alice", password: "nope" } } }]) {
      const client = new RegistryClient({ ...opts, authFiles: [], registriesConf: false });
      try {
        await expect(client.getManifest(`${reg.host}/basic/app:1`)).rejects.toMatchObject({
          code: "REGISTRY_UNAUTHORIZED",
          context: { registry: reg.host, repository: "basic/app", status: 401 },
        });
      } finally {
        await client.close();
      }
    }
  });
});

describe("Bearer token auth", () => {
  let reg: RegistryProcess;
  let tokens: TokenServer;
  beforeAll(async () => {
    tokens = await startTokenServer({ bob: "pw" });
    reg = await startRegistry({ token: { realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, rootCertPem: tokens.certPem } });
  });
  afterAll(async () => {
    await reg?.stop();
    await tokens?.close();
  });

  it("should run the token flow with credentials, cache the token per scope, and pull anonymously", async () => {
    const client = new RegistryClient({ credentials: { [reg.host]: { username: "bob", password: "pw" } }, authFiles: [], registriesConf: false });
    const anon = new RegistryClient({ authFiles: [], registriesConf: false });
    try {
      const img = makeImage([1000, 2000]);
      const ref = `${reg.host}/tok/app:1`;
      expect(await pushImage(client, ref, img)).toEqual(img.manifestDigest);
      const pushTokens = client.stats().tokenRequests;
      // one token for the push scope serves the whole push, and later pulls of the same repository
      expect(tokens.issued).toEqual([{ user: "bob", scopes: ["repository:tok/app:pull,push"] }]);
      await client.resolve(ref);
      await client.fetchRanges({ registry: reg.host, repository: "tok/app" }, img.layers[0]!.digest, [
        { offset: 0, length: 10 },
        { offset: 500, length: 10 },
      ]);
      expect(client.stats().tokenRequests - pushTokens).toEqual(0);

      const r = await anon.resolve(ref);
      expect(r.manifestDigest).toEqual(img.manifestDigest);
      expect(tokens.issued.slice(1)).toEqual([{ user: "", scopes: ["repository:tok/app:pull"] }]);
      // anonymous users get pull only: the registry refuses the push
      await expect(anon.pushBlob(`${reg.host}/tok/app`, makeImage([5]).layers[0]!.digest, 5, Buffer.alloc(5))).rejects.toMatchObject({
        code: "REGISTRY_UNAUTHORIZED",
        context: { registry: reg.host, repository: "tok/app" },
      });
    } finally {
      await client.close();
      await anon.close();
    }
  });

  it("should fetch a fresh token when the registry answers 401 to a cached one", async () => {
    // a front that revokes tokens: it answers 401 (with the registry's challenge) to any revoked token
    const revoked = new Set<string>();
    let challenge = "";
    const front = await startFront((req, res) => {
      const auth = req.headers.authorization ?? "";
      if (revoked.has(auth)) {
        res.writeHead(401, { "www-authenticate": challenge, "content-type": "application/json" }).end('{"errors":[{"code":"UNAUTHORIZED"}]}');
        return;
      }
      forward(reg.host, req, res);
    });
    const client = new RegistryClient({ authFiles: [], registriesConf: false, credentials: { [front.host]: { username: "bob", password: "pw" } } });
    try {
      const img = makeImage([10]);
      await pushImage(client, `${front.host}/tok/refresh:1`, img);
      const seenAuth = front.seen.map((r) => r.headers.authorization).filter((a): a is string => !!a);
      const first = seenAuth[seenAuth.length - 1]!;
      const head = await fetch(`${reg.url}/v2/`);
      challenge = head.headers.get("www-authenticate") ?? "";
      revoked.add(first);
      const before = client.stats().tokenRequests;
      expect((await client.getManifest(`${front.host}/tok/refresh:1`)).digest).toEqual(img.manifestDigest);
      expect(client.stats().tokenRequests - before).toEqual(1);
      const last = front.seen[front.seen.length - 1]!;
      expect([last.path, last.headers.authorization !== first, last.headers.authorization?.startsWith("Bearer ")]).toEqual(["/v2/tok/refresh/manifests/1", true, true]);
    } finally {
      await client.close();
      await front.close();
    }
  });
});

describe("a faulty token server", () => {
  let reg: RegistryProcess;
  let tokens: TokenServer;
  let tokenFront: Front;
  /** what the token server's front does with the next requests: pass them on, or fail them */
  let fault: ((req: IncomingMessage, res: ServerResponse) => boolean) | undefined;
  const img = makeImage([100]);
  const opts = { authFiles: [], registriesConf: false as const };
  beforeAll(async () => {
    tokens = await startTokenServer({ bob: "pw" });
    tokenFront = await startFront((req, res) => {
      if (fault?.(req, res)) return;
      forward(tokens.host, req, res);
    });
    reg = await startRegistry({ token: { realm: `${tokenFront.url}/token`, service: tokens.service, issuer: tokens.issuer, rootCertPem: tokens.certPem } });
    const pusher = new RegistryClient({ ...opts, credentials: { [reg.host]: { username: "bob", password: "pw" } } });
    await pushImage(pusher, `${reg.host}/tf/app:1`, img).finally(() => pusher.close());
  });
  afterAll(async () => {
    await reg?.stop();
    await tokenFront?.close();
    await tokens?.close();
  });
  async function withClient<T>(retry: RegistryClientOptions, fn: (c: RegistryClient) => Promise<T>): Promise<T> {
    const c = new RegistryClient({ ...opts, ...retry });
    try {
      return await fn(c);
    } finally {
      await c.close();
    }
  }
  const tokenRequests = () => tokenFront.seen.filter((r) => r.path.startsWith("/token")).length;

  it("should retry a token server's 5xx and 429 (honouring Retry-After) within the request's budget, then succeed", async () => {
    let n = 0;
    fault = (_req, res) => {
      n++;
      if (n === 1) res.writeHead(503).end();
      else if (n === 2) res.writeHead(429, { "retry-after": "1" }).end();
      return n <= 2;
    };
    tokenFront.seen.length = 0;
    const t0 = Date.now();
    await withClient({ retry: { baseDelayMs: 5 } }, async (c) => {
      expect((await c.getManifest(`${reg.host}/tf/app:1`)).digest).toEqual(img.manifestDigest);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
      expect(c.stats()).toMatchObject({ tokenRequests: 3, retries: 2 });
    });
    expect(tokenRequests()).toEqual(3);
  });

  it("should end a token server's lasting 5xx in REGISTRY_UNAVAILABLE like any other exhausted retry", async () => {
    fault = (_req, res) => {
      res.writeHead(503).end();
      return true;
    };
    tokenFront.seen.length = 0;
    await withClient({ retry: { maxAttempts: 3, baseDelayMs: 5 } }, async (c) => {
      await expect(c.getManifest(`${reg.host}/tf/app:1`)).rejects.toMatchObject({
        code: "REGISTRY_UNAVAILABLE",
        message: expect.stringContaining(`token server ${tokenFront.url} answered HTTP 503`),
        context: { registry: reg.host, repository: "tf/app", status: 503, attempts: 3 },
      });
    });
    expect(tokenRequests()).toEqual(3);
  });

  it("should spend one retry budget on a token server that drops connections, not one per attempt of the request", async () => {
    fault = (req) => {
      req.socket.destroy();
      return true;
    };
    tokenFront.seen.length = 0;
    await withClient({ retry: { baseDelayMs: 5 } }, async (c) => {
      await expect(c.getManifest(`${reg.host}/tf/app:1`)).rejects.toMatchObject({ code: "REGISTRY_UNAVAILABLE", context: { attempts: 5 } });
      expect(c.stats().tokenRequests).toEqual(5);
    });
    // the default policy's 5 attempts, not 5 × 5
    expect(tokenRequests()).toEqual(5);
  });

  it("should stop at once when a token server's Retry-After would end past maxTotalMs", async () => {
    fault = (_req, res) => {
      res.writeHead(503, { "retry-after": "60" }).end();
      return true;
    };
    tokenFront.seen.length = 0;
    const t0 = Date.now();
    await withClient({ retry: { maxDelayMs: 60_000, maxTotalMs: 2000 } }, async (c) => {
      await expect(c.getManifest(`${reg.host}/tf/app:1`)).rejects.toMatchObject({ code: "REGISTRY_UNAVAILABLE", context: { status: 503, attempts: 1 } });
    });
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(tokenRequests()).toEqual(1);
  });
});
