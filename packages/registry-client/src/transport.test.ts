import { Readable } from "node:stream";
import type { Dispatcher } from "undici";
import { describe, expect, it } from "vitest";
import { DEFAULT_RETRY } from "./retry.js";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { getBlob } from "./blobs.js";
import { Endpoints } from "./endpoint.js";
import { Reference } from "./reference.js";
import { Transport, type Call } from "./transport.js";

type Answer = { status: number; headers?: Record<string, string>; body?: string } | Error;

/** A dispatcher that answers from a script per origin ("registry" or "token") and logs what was asked. */
function fakeDispatcher(script: (to: "registry" | "token", n: number, method: string) => Answer) {
  const log: string[] = [];
  const counts = { registry: 0, token: 0 };
  const dispatcher = {
    async request(o: { origin: string; path: string; method: string }) {
      // the registry speaks HTTPS only: the plain-HTTP attempt sent alongside the first call finds nobody
      if (o.origin === "http://reg.test") throw Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
      const to = o.origin === "http://auth.test" ? "token" : "registry";
      log.push(`${to} ${o.method} ${o.path.split("?")[0]}`);
      const a = script(to, ++counts[to], o.method);
      if (a instanceof Error) throw a;
      return { statusCode: a.status, headers: a.headers ?? {}, body: Readable.from([Buffer.from(a.body ?? "")]) };
    },
  } as unknown as Dispatcher;
  return { dispatcher, log, counts };
}

const challenge = { "www-authenticate": 'Bearer realm="http://auth.test/token",service="reg"' };
const reset = () => Object.assign(new Error("socket hang up"), { code: "ECONNRESET" });
const token = { status: 200, body: JSON.stringify({ token: "t", expires_in: 300 }) };

function transport(dispatcher: Dispatcher, retry: Partial<typeof DEFAULT_RETRY> = {}) {
  return new Transport({
    dispatcher,
    retry: { ...DEFAULT_RETRY, baseDelayMs: 1, ...retry },
    userAgent: "test",
    endpoints: new Endpoints({ registriesConf: false, insecureRegistries: ["reg.test"] }),
    credentials: async () => undefined,
  });
}

const call = (over: Partial<Call> = {}): Call => ({ method: "GET", registry: "reg.test", repository: "r", path: "/v2/r/manifests/1", scopes: ["repository:r:pull"], ...over });
const ok = async (res: { status: number; body: Readable }) => {
  for await (const _ of res.body) void _;
  return res.status;
};

describe("one retry budget for a call and its token requests", () => {
  it("should send at most maxAttempts token requests to a token server that resets, and end in REGISTRY_UNAVAILABLE", async () => {
    const { dispatcher, counts } = fakeDispatcher((to) => (to === "registry" ? { status: 401, headers: challenge } : reset()));
    const t = transport(dispatcher);
    await expect(t.request(call(), ok)).rejects.toMatchObject({
      code: "REGISTRY_UNAVAILABLE",
      message: expect.stringContaining("token server http://auth.test: socket hang up"),
      context: { attempts: 5 },
    });
    expect([counts.token, counts.registry, t.stats.tokenRequests, t.stats.retries]).toEqual([5, 1, 5, 4]);
  });

  it("should count token failures and the registry's own 5xx against the same attempts", async () => {
    // token: 503, then fine; registry: 401 (challenge), 500, 500, 500 ... — 5 attempts in all, not 5 each
    const { dispatcher, log } = fakeDispatcher((to, n) => {
      if (to === "token") return n === 1 ? { status: 503 } : token;
      return n === 1 ? { status: 401, headers: challenge } : { status: 500 };
    });
    await expect(transport(dispatcher).request(call(), ok)).rejects.toMatchObject({ code: "REGISTRY_UNAVAILABLE", context: { status: 500, attempts: 5 } });
    expect(log.filter((l) => l.startsWith("token")).length + log.filter((l) => l.startsWith("registry")).length).toEqual(1 + 2 + 4);
  });

  it("should send a PATCH chunk again only when it never reached the registry (its token request failed)", async () => {
    const tokenFails = fakeDispatcher((to, n) => {
      if (to === "token") return n === 1 ? reset() : token;
      return n === 1 ? { status: 401, headers: challenge } : { status: 202 };
    });
    const patch = call({ method: "PATCH", path: "/v2/r/blobs/uploads/u", body: Buffer.from("chunk"), retry: false, scopes: ["repository:r:pull,push"] });
    expect(await transport(tokenFails.dispatcher).request(patch, ok)).toEqual(202);
    expect(tokenFails.log).toEqual(["registry PATCH /v2/r/blobs/uploads/u", "token GET /token", "token GET /token", "registry PATCH /v2/r/blobs/uploads/u"]);

    const registryFails = fakeDispatcher(() => ({ status: 503 }));
    await expect(transport(registryFails.dispatcher).request(patch, ok)).rejects.toMatchObject({ code: "REGISTRY_UNAVAILABLE", context: { status: 503, attempts: 1 } });
    expect(registryFails.counts.registry).toEqual(1);
  });
});

describe("registries.conf mirrors, tried in order before the registry", () => {
  /** a dispatcher answering per host from a script, logging `host METHOD path` */
  function hosts(script: (host: string, method: string) => Answer) {
    const log: string[] = [];
    const dispatcher = {
      async request(o: { origin: string; path: string; method: string }) {
        const host = new URL(o.origin).host;
        // every host speaks HTTPS only: the plain-HTTP attempt sent alongside a first call finds nobody
        if (o.origin.startsWith("http:")) throw Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
        log.push(`${host} ${o.method} ${o.path}`);
        const a = script(host, o.method);
        if (a instanceof Error) throw a;
        return { statusCode: a.status, headers: a.headers ?? {}, body: Readable.from([Buffer.from(a.body ?? "")]) };
      },
    } as unknown as Dispatcher;
    return { dispatcher, log };
  }

  async function mirrored(dispatcher: Dispatcher, conf: string) {
    const dir = await mkdtemp(join(tmpdir(), "rc-mirrors-"));
    await writeFile(join(dir, "registries.conf"), conf);
    const t = new Transport({
      dispatcher,
      retry: { ...DEFAULT_RETRY, baseDelayMs: 1 },
      userAgent: "test",
      endpoints: new Endpoints({ registriesConf: join(dir, "registries.conf"), registriesConfDir: false, insecureRegistries: ["*.test"] }),
      credentials: async () => undefined,
    });
    return { t, done: () => rm(dir, { recursive: true, force: true }) };
  }

  const conf = `[[registry]]\nprefix = "reg.test/team"\nlocation = "reg.test/mirrored/team"\n[[registry.mirror]]\nlocation = "m1.test/cache"\n[[registry.mirror]]\nlocation = "m2.test"\n`;
  const blob = (over: Partial<Call> = {}) =>
    call({ registry: "reg.test", repository: "team/app", digest: `sha256:${"a".repeat(64)}`, path: `/v2/team/app/blobs/sha256:${"a".repeat(64)}`, scopes: ["repository:team/app:pull"], ...over });

  it("should ask each mirror (the prefix replaced by its location, as containers/image does) in order, then the rewritten registry, and count who answered", async () => {
    const { dispatcher, log } = hosts((host) => (host === "reg.test" ? { status: 200, body: "bytes" } : { status: 404 }));
    const { t, done } = await mirrored(dispatcher, conf);
    try {
      const res = await t.request(blob(), async (r) => {
        if (r.status !== 200) throw Object.assign(new Error(`HTTP ${r.status}`), { code: "REGISTRY_NOT_FOUND" });
        let n = 0;
        for await (const c of r.body) n += (c as Buffer).length;
        r.counter.bytesReceived += n;
        return n;
      });
      expect(res).toBe(5);
      expect(log).toEqual([
        `m1.test GET /v2/cache/app/blobs/sha256:${"a".repeat(64)}`,
        `m2.test GET /v2/app/blobs/sha256:${"a".repeat(64)}`,
        `reg.test GET /v2/mirrored/team/app/blobs/sha256:${"a".repeat(64)}`,
      ]);
      expect(t.stats.mirrorFallbacks).toBe(2);
      expect(t.stats.hosts["reg.test"]).toEqual({ requests: 1, bytesReceived: 5 });
      expect(t.stats.hosts["m1.test"]?.requests).toBe(1);
    } finally {
      await done();
    }
  });

  it("should skip a mirror that cannot be reached for a while instead of paying for it on every call", async () => {
    const { dispatcher, log } = hosts((host) => (host === "m1.test" ? reset() : { status: 200 }));
    const { t, done } = await mirrored(dispatcher, `[[registry]]\nlocation = "reg.test"\n[[registry.mirror]]\nlocation = "m1.test"\n`);
    try {
      expect(await t.request(blob(), ok)).toBe(200);
      const m1First = log.filter((l) => l.startsWith("m1.test")).length;
      // https, then plain http (insecure), then the mirror's second attempt over http
      expect(m1First).toBeGreaterThanOrEqual(2);
      expect(await t.request(blob(), ok)).toBe(200);
      expect(log.filter((l) => l.startsWith("m1.test")).length).toBe(m1First);
      expect(log.filter((l) => l.startsWith("reg.test")).length).toBe(2);
    } finally {
      await done();
    }
  });

  it("should pass over a mirror that sends a blob's wrong bytes for the registry, in the same request", async () => {
    const good = Buffer.from("the right bytes");
    const digest = `sha256:${createHash("sha256").update(good).digest("hex")}`;
    const { dispatcher, log } = hosts((host) => ({ status: 200, body: host === "m1.test" ? "the wrong bytes" : good.toString() }));
    const { t, done } = await mirrored(dispatcher, `[[registry]]\nlocation = "reg.test"\n[[registry.mirror]]\nlocation = "m1.test"\n`);
    try {
      expect((await getBlob(t, new Reference("reg.test", "team/app", "1"), digest, {})).toString()).toBe("the right bytes");
      expect(log.map((l) => l.split(" ")[0])).toEqual(["m1.test", "reg.test"]);
      expect([t.stats.mirrorFallbacks, t.stats.retries]).toEqual([1, 0]);
    } finally {
      await done();
    }
  });

  it("should pass over the mirror whose range bytes the caller found wrong (distrust), and never the registry", async () => {
    const { dispatcher, log } = hosts(() => ({ status: 206, headers: { "content-range": "bytes 0-4/10" }, body: "bytes" }));
    const { t, done } = await mirrored(dispatcher, `[[registry]]\nlocation = "reg.test"\n[[registry.mirror]]\nlocation = "m1.test"\n`);
    try {
      await t.request(blob(), ok);
      expect(t.distrust(`sha256:${"a".repeat(64)}`)).toBe(true);
      await t.request(blob(), ok);
      expect(log.map((l) => l.split(" ")[0])).toEqual(["m1.test", "reg.test"]);
      // the registry answered last: nothing left to pass over
      expect(t.distrust(`sha256:${"a".repeat(64)}`)).toBe(false);
    } finally {
      await done();
    }
  });

  it("should send writes to the registry the reference names: no mirror, no rewrite (as containers/image pushes)", async () => {
    const { dispatcher, log } = hosts(() => ({ status: 202 }));
    const { t, done } = await mirrored(dispatcher, conf);
    try {
      await t.request(blob({ method: "POST", path: "/v2/team/app/blobs/uploads/", digest: undefined }), ok);
      expect(log).toEqual(["reg.test POST /v2/team/app/blobs/uploads/"]);
    } finally {
      await done();
    }
  });
});
