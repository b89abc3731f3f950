import { Readable } from "node:stream";
import type { Dispatcher } from "undici";
import { describe, expect, it } from "vitest";
import { Auth } from "./auth.js";
import { parseWwwAuthenticate } from "./challenge.js";
import type { Credentials } from "./credentials.js";
import type { Call, RequestStats } from "./transport.js";

type Answer = { status: number; body?: string };
interface Seen {
  method: string;
  origin: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

/** A token server that answers from a script and records what it was asked. */
function fakeTokenServer(answer: (seen: Seen, n: number) => Answer) {
  const seen: Seen[] = [];
  const dispatcher = {
    async request(o: Seen) {
      seen.push({ method: o.method, origin: o.origin, path: o.path, headers: o.headers, body: o.body });
      const a = answer(seen[seen.length - 1]!, seen.length);
      return { statusCode: a.status, headers: {}, body: Readable.from([Buffer.from(a.body ?? "")]) };
    },
  } as unknown as Dispatcher;
  return { dispatcher, seen };
}

function auth(dispatcher: Dispatcher, creds: Credentials | undefined) {
  const stats = { requests: 0, bytesReceived: 0, bytesSent: 0, tokenRequests: 0 } as unknown as RequestStats;
  return new Auth({ dispatcher, userAgent: "test", stats, credentials: async () => creds });
}

const call = (scopes = ["repository:team/app:pull"]): Call => ({ method: "GET", registry: "reg.test", repository: "team/app", path: "/v2/team/app/manifests/1", scopes });
const bearer = parseWwwAuthenticate('Bearer realm="https://auth.test/token",service="reg.test"');
const basicChallenge = parseWwwAuthenticate('Basic realm="reg"');

describe("identity tokens in the Bearer flow", () => {
  it("should exchange an identity token by a form POST (docker's OAuth2 refresh) and send the access token", async () => {
    const { dispatcher, seen } = fakeTokenServer(() => ({ status: 200, body: JSON.stringify({ access_token: "acc-1", expires_in: 300, scope: "" }) }));
    const a = auth(dispatcher, { identityToken: "refresh-123", username: "jane" });
    const c = call(["repository:team/app:pull", "repository:team/app:push"]);
    expect(await a.learnChallenge(c, bearer, undefined)).toBe(true);
    expect(await a.authorization(c)).toEqual("Bearer acc-1");
    expect(seen).toHaveLength(1);
    const s = seen[0]!;
    expect([s.method, s.origin, s.path, s.headers["content-type"], s.headers.authorization]).toEqual([
      "POST",
      "https://auth.test",
      "/token",
      "application/x-www-form-urlencoded",
      undefined,
    ]);
    expect(Object.fromEntries(new URLSearchParams(s.body))).toEqual({
      grant_type: "refresh_token",
      refresh_token: "refresh-123",
      service: "reg.test",
      scope: "repository:team/app:pull repository:team/app:push",
      client_id: "lazypull",
    });
  });

  it("should prefer the identity token over a password, as distribution's fetchToken does", async () => {
    const { dispatcher, seen } = fakeTokenServer(() => ({ status: 200, body: JSON.stringify({ access_token: "acc-2" }) }));
    await auth(dispatcher, { username: "bob", password: "pw", identityToken: "idt" }).learnChallenge(call(), bearer, undefined);
    expect([seen[0]!.method, new URLSearchParams(seen[0]!.body).get("refresh_token")]).toEqual(["POST", "idt"]);
  });

  it("should not fall back to the GET when the POST answers 404 (distribution does not)", async () => {
    const { dispatcher, seen } = fakeTokenServer(() => ({ status: 404 }));
    await expect(auth(dispatcher, { identityToken: "idt" }).learnChallenge(call(), bearer, undefined)).rejects.toMatchObject({
      code: "REGISTRY_BAD_RESPONSE",
      message: expect.stringContaining("does not take OAuth2 identity tokens (POST answered HTTP 404)"),
      context: { registry: "reg.test", status: 404, realm: "https://auth.test/token" },
    });
    expect(seen.map((s) => s.method)).toEqual(["POST"]);
  });

  it("should call an expired or refused identity token unauthorized", async () => {
    const invalid = fakeTokenServer(() => ({ status: 400, body: JSON.stringify({ error: "invalid_grant" }) }));
    await expect(auth(invalid.dispatcher, { identityToken: "old" }).learnChallenge(call(), bearer, undefined)).rejects.toMatchObject({
      code: "REGISTRY_UNAUTHORIZED",
      message: expect.stringContaining("(invalid_grant): log in again"),
    });
    const refused = fakeTokenServer(() => ({ status: 401 }));
    await expect(auth(refused.dispatcher, { identityToken: "x", username: "jane" }).learnChallenge(call(), bearer, undefined)).rejects.toMatchObject({
      code: "REGISTRY_UNAUTHORIZED",
      message: expect.stringContaining('refused the identity token of user "jane"'),
    });
    const other = fakeTokenServer(() => ({ status: 400, body: JSON.stringify({ error: "unsupported_grant_type" }) }));
    await expect(auth(other.dispatcher, { identityToken: "x" }).learnChallenge(call(), bearer, undefined)).rejects.toMatchObject({
      code: "REGISTRY_BAD_RESPONSE",
      message: expect.stringContaining("HTTP 400 (unsupported_grant_type)"),
    });
  });

  it("should keep the GET with Basic for a username and password", async () => {
    const { dispatcher, seen } = fakeTokenServer(() => ({ status: 200, body: JSON.stringify({ token: "t" }) }));
    await auth(dispatcher, { username: "bob", password: "pw" }).learnChallenge(call(), bearer, undefined);
    expect([seen[0]!.method, seen[0]!.body, seen[0]!.headers.authorization]).toEqual(["GET", undefined, `Basic ${Buffer.from("bob:pw").toString("base64")}`]);
  });
});

describe("identity tokens and Basic", () => {
  it("should treat an identity token alone as anonymous for Basic: no header, no retry", async () => {
    const { dispatcher, seen } = fakeTokenServer(() => ({ status: 500 }));
    const a = auth(dispatcher, { identityToken: "idt", username: "jane" });
    expect(await a.learnChallenge(call(), basicChallenge, undefined)).toBe(false);
    expect(await a.authorization(call())).toBeUndefined();
    const b = auth(dispatcher, { username: "bob", password: "pw", identityToken: "idt" });
    expect(await b.learnChallenge(call(), basicChallenge, undefined)).toBe(true);
    expect(await b.authorization(call())).toEqual(`Basic ${Buffer.from("bob:pw").toString("base64")}`);
    expect(seen).toHaveLength(0);
  });
});
