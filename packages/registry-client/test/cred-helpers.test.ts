import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import type { IncomingMessage } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import bcrypt from "bcryptjs";
import { startRegistry, type RegistryProcess } from "@lazypull/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RegistryClient } from "../src/index.js";
import { forward, makeImage, pushImage, sha256, startFront, startTokenServer, type Front, type TokenServer } from "./helpers.js";

// RegistryClient has no option for the helpers' environment: PATH is this test file's own (a fork of its own)
let dir: string;
let savedPath: string | undefined;
const enc = (s: string) => Buffer.from(s).toString("base64");

async function helper(name: string, script: string): Promise<void> {
  const p = join(dir, "bin", `docker-credential-${name}`);
  await writeFile(p, `#!/bin/sh\n${script}\n`);
  await chmod(p, 0o755);
}

async function config(name: string, content: object): Promise<string> {
  const p = join(dir, name);
  await writeFile(p, JSON.stringify(content));
  return p;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "rc-credhelpers-it-"));
  await mkdir(join(dir, "bin"));
  savedPath = process.env.PATH;
  process.env.PATH = `${join(dir, "bin")}:${savedPath ?? "/usr/bin:/bin"}`;
});
afterAll(async () => {
  process.env.PATH = savedPath;
  await rm(dir, { recursive: true, force: true });
});

describe("a credential helper for an htpasswd registry", () => {
  let reg: RegistryProcess;
  beforeAll(async () => {
    reg = await startRegistry({ htpasswd: `alice:${bcrypt.hashSync("s3cret", 4)}\n` });
    // the password for this registry's host[:port] only, "not found" for anything else
    await helper(
      "lazypulltest",
      `read -r url || true\nif [ "$url" = "${reg.host}" ]; then printf '{"ServerURL":"%s","Username":"alice","Secret":"s3cret"}' "$url"; exit 0; fi\n` +
        `echo "credentials not found in native keychain"; exit 1`,
    );
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it("should push a blob and read it back with the password from credHelpers' helper", async () => {
    const file = await config("config.json", { auths: {}, credHelpers: { [reg.host]: "lazypulltest" } });
    const client = new RegistryClient({ authFiles: [file], registriesConf: false });
    try {
      const bytes = Buffer.from("pushed with a credential helper");
      const digest = sha256(bytes);
      await client.pushBlob(`${reg.host}/helped/app`, digest, bytes.length, bytes);
      expect(await client.getBlob(`${reg.host}/helped/app`, digest)).toEqual(bytes);
      const img = makeImage([300]);
      expect(await pushImage(client, `${reg.host}/helped/app:1`, img)).toEqual(img.manifestDigest);
      expect((await client.resolve(`${reg.host}/helped/app:1`)).manifestDigest).toEqual(img.manifestDigest);
    } finally {
      await client.close();
    }
  });

  it("should use credsStore when auths has no entry, and fail with REGISTRY_CREDENTIAL_HELPER_MISSING when the helper is not installed", async () => {
    const store = await config("store.json", { auths: { [reg.host]: {} }, credsStore: "lazypulltest" });
    const ok = new RegistryClient({ authFiles: [store], registriesConf: false });
    const absent = await config("absent.json", { credHelpers: { [reg.host]: "lazypulltest-absent" } });
    const broken = new RegistryClient({ authFiles: [absent], registriesConf: false });
    try {
      expect((await ok.getManifest(`${reg.host}/helped/app:1`)).digest).toMatch(/^sha256:/);
      await expect(broken.getManifest(`${reg.host}/helped/app:1`)).rejects.toMatchObject({
        code: "REGISTRY_CREDENTIAL_HELPER_MISSING",
        message: expect.stringContaining(`docker-credential-lazypulltest-absent (credHelpers["${reg.host}"] in ${absent}) is not on PATH`),
        context: { registry: reg.host, helper: "docker-credential-lazypulltest-absent", file: absent },
      });
    } finally {
      await ok.close();
      await broken.close();
    }
  });
});

describe("identity tokens against a token-auth registry", () => {
  let reg: RegistryProcess;
  let tokens: TokenServer;
  let oauth: Front;
  /** what the OAuth front does with a POST: exchange known refresh tokens, or answer 404 like a GET-only server */
  let postMode: "oauth" | "404" = "oauth";
  const posts: Record<string, string>[] = [];

  beforeAll(async () => {
    tokens = await startTokenServer({ bob: "pw" });
    // the test token server speaks only GET; this front adds the OAuth2 refresh_token grant on POST by
    // fetching bob's token from it, so the registry sees real signed tokens
    oauth = await startFront((req, res) => {
      if (req.method !== "POST") return forward(tokens.host, req, res);
      if (postMode === "404") return void res.writeHead(404).end();
      void readForm(req).then(async (form) => {
        posts.push(form);
        if (form.grant_type !== "refresh_token" || form.refresh_token !== "idt-bob") return void res.writeHead(401).end();
        const q = new URLSearchParams({ service: form.service ?? "" });
        for (const s of (form.scope ?? "").split(" ").filter(Boolean)) q.append("scope", s);
        const r = await fetch(`${tokens.url}/token?${q.toString()}`, { headers: { authorization: `Basic ${enc("bob:pw")}` } });
        const { token, expires_in } = (await r.json()) as { token: string; expires_in: number };
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ access_token: token, expires_in, scope: form.scope }));
      });
    });
    reg = await startRegistry({ token: { realm: `${oauth.url}/token`, service: tokens.service, issuer: tokens.issuer, rootCertPem: tokens.certPem } });
    await helper("lazypulltoken", `cat >/dev/null\nprintf '{"ServerURL":"x","Username":"<token>","Secret":"idt-bob"}'`);
  });
  afterAll(async () => {
    await reg?.stop();
    await oauth?.close();
    await tokens?.close();
  });

  it("should push and pull with an auths identitytoken exchanged by POST, never sending it as Basic", async () => {
    const file = await config("idt.json", { auths: { [reg.host]: { auth: enc("bob:"), identitytoken: "idt-bob" } } });
    const client = new RegistryClient({ authFiles: [file], registriesConf: false });
    try {
      posts.length = 0;
      oauth.seen.length = 0;
      const img = makeImage([700]);
      expect(await pushImage(client, `${reg.host}/idt/app:1`, img)).toEqual(img.manifestDigest);
      expect((await client.resolve(`${reg.host}/idt/app:1`)).manifestDigest).toEqual(img.manifestDigest);
      expect(oauth.seen.map((s) => s.method)).toEqual(["POST"]);
      expect(oauth.seen[0]!.headers.authorization).toBeUndefined();
      expect(posts).toEqual([
        { grant_type: "refresh_token", refresh_token: "idt-bob", service: tokens.service, scope: "repository:idt/app:pull,push", client_id: "lazypull" },
      ]);
      expect(tokens.issued.at(-1)).toEqual({ user: "bob", scopes: ["repository:idt/app:pull,push"] });
    } finally {
      await client.close();
    }
  });

  it("should take a helper's <token> answer as an identity token, and fail clearly when the token server has no POST", async () => {
    const file = await config("idt-helper.json", { credHelpers: { [reg.host]: "lazypulltoken" } });
    const client = new RegistryClient({ authFiles: [file], registriesConf: false });
    const late = new RegistryClient({ authFiles: [file], registriesConf: false });
    try {
      posts.length = 0;
      expect((await client.getManifest(`${reg.host}/idt/app:1`)).digest).toMatch(/^sha256:/);
      expect(posts.map((p) => p.refresh_token)).toEqual(["idt-bob"]);
      postMode = "404";
      await expect(late.getManifest(`${reg.host}/idt/app:1`)).rejects.toMatchObject({
        code: "REGISTRY_BAD_RESPONSE",
        message: expect.stringContaining("POST answered HTTP 404"),
        context: { registry: reg.host, status: 404 },
      });
    } finally {
      postMode = "oauth";
      await client.close();
      await late.close();
    }
  });
});

async function readForm(req: IncomingMessage): Promise<Record<string, string>> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString("utf8")));
}
