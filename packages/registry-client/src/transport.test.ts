import { Readable } from "node:stream";
import type { Dispatcher } from "undici";
import { describe, expect, it } from "vitest";
import { DEFAULT_RETRY } from "./retry.js";
import { Transport, type Call } from "./transport.js";

type Answer = { status: number; headers?: Record<string, string>; body?: string } | Error;

/** A dispatcher that answers from a script per origin ("registry" or "token") and logs what was asked. */
function fakeDispatcher(script: (to: "registry" | "token", n: number, method: string) => Answer) {
  const log: string[] = [];
  const counts = { registry: 0, token: 0 };
  const dispatcher = {
    async request(o: { origin: string; path: string; method: string }) {
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
    baseUrl: async (r) => `http://${r}`,
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
