import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCredentialHelper } from "./cred-helpers.js";
import { credentialSource, defaultAuthFiles, lookupCredentials } from "./credentials.js";

let dir: string;
let bin: string;
let env: NodeJS.ProcessEnv;
const enc = (s: string) => Buffer.from(s).toString("base64");

/** docker-credential-NAME in the test's bin directory, as a shell script */
async function helper(name: string, script: string): Promise<void> {
  const p = join(bin, `docker-credential-${name}`);
  await writeFile(p, `#!/bin/sh\n${script}\n`);
  await chmod(p, 0o755);
}

async function authFile(name: string, content: object): Promise<string> {
  const p = join(dir, name);
  await writeFile(p, JSON.stringify(content));
  return p;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "rc-credhelpers-"));
  bin = join(dir, "bin");
  await mkdir(bin);
  // the helpers' PATH: the test's own first, then the system's for sh, cat and sleep
  env = { PATH: `${bin}:/usr/bin:/bin` };
  const log = join(dir, "calls.log");
  // answers for any server URL, naming it in the username; logs each call
  await helper("good", `read -r url || true\necho "good $url" >> ${log}\nprintf '{"ServerURL":"%s","Username":"u-%s","Secret":"s3cret"}' "$url" "$url"`);
  await helper("token", `cat >/dev/null\nprintf '{"ServerURL":"x","Username":"<token>","Secret":"refresh-123"}'`);
  await helper("none", `cat >/dev/null\necho "credentials not found in native keychain"\nexit 1`);
  await helper("empty", `cat >/dev/null\nprintf '{"ServerURL":"x","Username":"","Secret":""}'`);
  // not exec'd: the sleeping grandchild keeps the pipes open after the shell is killed
  await helper("slow", `sleep 3`);
  await helper("broken", `cat >/dev/null\necho "error getting credentials - keychain locked"\necho "more detail" >&2\nexit 3`);
  await helper("badjson", `cat >/dev/null\necho "{not json"`);
  await helper("huge", `cat >/dev/null\nhead -c 1100000 /dev/zero | tr '\\0' a`);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("running a credential helper", () => {
  const origin = { setting: "credsStore", file: "/x/config.json" };

  it("should parse username and secret, take <token> as an identity token, and take not-found and empty answers as nothing", async () => {
    expect(await runCredentialHelper("good", "reg.io:5000", "reg.io:5000", origin, { env })).toEqual({ username: "u-reg.io:5000", password: "s3cret" });
    expect(await runCredentialHelper("token", "reg.io", "reg.io", origin, { env })).toEqual({ identityToken: "refresh-123" });
    expect(await runCredentialHelper("none", "reg.io", "reg.io", origin, { env })).toBeUndefined();
    expect(await runCredentialHelper("empty", "reg.io", "reg.io", origin, { env })).toBeUndefined();
  });

  it("should name a missing helper and the file that configured it", async () => {
    await expect(runCredentialHelper("absent", "reg.io", "reg.io", origin, { env })).rejects.toMatchObject({
      code: "REGISTRY_CREDENTIAL_HELPER_MISSING",
      message: expect.stringMatching(/docker-credential-absent \(credsStore in \/x\/config\.json\) is not on PATH: install it/),
      context: { registry: "reg.io", helper: "docker-credential-absent", file: "/x/config.json" },
    });
  });

  it("should kill a helper that does not answer in time, even one whose child holds its pipes", async () => {
    const t0 = Date.now();
    await expect(runCredentialHelper("slow", "reg.io", "reg.io", origin, { env, timeoutMs: 200 })).rejects.toMatchObject({
      code: "REGISTRY_CREDENTIAL_HELPER_FAILED",
      message: expect.stringContaining("gave no answer within 200 ms and was killed"),
    });
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it("should fail on bad JSON, too much output, and a non-zero exit (with what the helper said)", async () => {
    await expect(runCredentialHelper("badjson", "reg.io", "reg.io", origin, { env })).rejects.toMatchObject({
      code: "REGISTRY_CREDENTIAL_HELPER_FAILED",
      message: expect.stringContaining("not JSON"),
    });
    await expect(runCredentialHelper("huge", "reg.io", "reg.io", origin, { env })).rejects.toMatchObject({
      code: "REGISTRY_CREDENTIAL_HELPER_FAILED",
      message: expect.stringContaining("more than 1048576 bytes"),
    });
    await expect(runCredentialHelper("broken", "reg.io", "reg.io", origin, { env })).rejects.toMatchObject({
      code: "REGISTRY_CREDENTIAL_HELPER_FAILED",
      message: expect.stringContaining("exited with status 3 for reg.io: error getting credentials - keychain locked / more detail"),
    });
  });

  it("should refuse a helper name that is a path", async () => {
    await expect(runCredentialHelper("../../bin/sh", "reg.io", "reg.io", origin, { env })).rejects.toMatchObject({ code: "REGISTRY_AUTH_CONFIG_INVALID" });
  });
});

describe("credentials from auth files with credHelpers and credsStore", () => {
  it("should let a credHelpers entry beat auths for its registry, and leave other registries to auths", async () => {
    const f = await authFile("helpers.json", {
      auths: { "reg.io": { auth: enc("file:pw") }, "other.io": { auth: enc("o:pw") } },
      credHelpers: { "reg.io": "good" },
    });
    expect(await lookupCredentials([f], "reg.io", "team/app", { env })).toEqual({ username: "u-reg.io", password: "s3cret" });
    expect(await lookupCredentials([f], "other.io", undefined, { env })).toEqual({ username: "o", password: "pw" });
  });

  it("should go on to the next file, not this file's auths, when the credHelpers helper has nothing (containers/image)", async () => {
    const a = await authFile("a.json", { auths: { "reg.io": { auth: enc("same-file:pw") } }, credHelpers: { "reg.io": "none" } });
    const b = await authFile("b.json", { auths: { "reg.io": { auth: enc("next-file:pw") } } });
    expect(await lookupCredentials([a, b], "reg.io", undefined, { env })).toEqual({ username: "next-file", password: "pw" });
    expect(await lookupCredentials([a], "reg.io", undefined, { env })).toBeUndefined();
  });

  it("should ask credsStore only when auths has no usable entry (docker's empty {} markers do not count)", async () => {
    const f = await authFile("store.json", { auths: { "a.io": { auth: enc("a:pw") }, "c.io": {} }, credsStore: "good" });
    expect(await lookupCredentials([f], "a.io", undefined, { env })).toEqual({ username: "a", password: "pw" });
    expect(await lookupCredentials([f], "b.io", undefined, { env })).toEqual({ username: "u-b.io", password: "s3cret" });
    expect(await lookupCredentials([f], "c.io", undefined, { env })).toEqual({ username: "u-c.io", password: "s3cret" });
  });

  it("should turn a <token> answer and an identitytoken entry into identity tokens", async () => {
    const f = await authFile("tokens.json", {
      auths: { "id.io": { auth: enc("jane:"), identitytoken: "idt-1" }, "both.io": { auth: enc("bob:pw"), identitytoken: "idt-2" } },
      credHelpers: { "tok.io": "token" },
    });
    expect(await lookupCredentials([f], "tok.io", undefined, { env })).toEqual({ identityToken: "refresh-123" });
    expect(await lookupCredentials([f], "id.io", undefined, { env })).toEqual({ identityToken: "idt-1", username: "jane" });
    expect(await lookupCredentials([f], "both.io", undefined, { env })).toEqual({ username: "bob", password: "pw", identityToken: "idt-2" });
  });

  it("should ask a helper for Docker Hub as docker does (https://index.docker.io/v1/), then as podman does (docker.io)", async () => {
    const f = await authFile("hub.json", { credHelpers: { "https://index.docker.io/v1/": "good" } });
    expect(await lookupCredentials([f], "docker.io", "library/debian", { env })).toEqual({ username: "u-https://index.docker.io/v1/", password: "s3cret" });
    expect(await lookupCredentials([], "docker.io", undefined, { env, helpers: ["good"] })).toEqual({ username: "u-docker.io", password: "s3cret" });
  });

  it("should fail with the helper's code when a configured helper is missing or broken", async () => {
    const f = await authFile("missing.json", { credHelpers: { "reg.io": "absent" } });
    await expect(lookupCredentials([f], "reg.io", undefined, { env })).rejects.toMatchObject({
      code: "REGISTRY_CREDENTIAL_HELPER_MISSING",
      context: { helper: "docker-credential-absent", file: f, setting: 'credHelpers["reg.io"]' },
    });
    const g = await authFile("badstore.json", { credsStore: "badjson" });
    await expect(lookupCredentials([g], "reg.io", undefined, { env })).rejects.toMatchObject({ code: "REGISTRY_CREDENTIAL_HELPER_FAILED", context: { file: g } });
  });
});

describe("registries.conf credential-helpers", () => {
  it("should consult the helpers in order, containers-auth.json standing for the auth files", async () => {
    const f = await authFile("plain.json", { auths: { "reg.io": { auth: enc("file:pw") } } });
    expect(await lookupCredentials([f], "reg.io", undefined, { env, helpers: ["none", "containers-auth.json", "good"] })).toEqual({ username: "file", password: "pw" });
    expect(await lookupCredentials([f], "reg.io", undefined, { env, helpers: ["good", "containers-auth.json"] })).toEqual({ username: "u-reg.io", password: "s3cret" });
    expect(await lookupCredentials([f], "reg.io", undefined, { env, helpers: ["none"] })).toBeUndefined();
    expect(await lookupCredentials([f], "reg.io", undefined, { env, helpers: [] })).toEqual({ username: "file", password: "pw" });
    expect(await lookupCredentials([f], "reg.io", undefined, { env, helpers: async () => ["good"] })).toEqual({ username: "u-reg.io", password: "s3cret" });
  });

  it("should pass over a failing helper when a later one has credentials, and report it when none has", async () => {
    const f = await authFile("plain2.json", { auths: { "reg.io": { auth: enc("file:pw") } } });
    expect(await lookupCredentials([f], "reg.io", undefined, { env, helpers: ["absent", "containers-auth.json"] })).toEqual({ username: "file", password: "pw" });
    await expect(lookupCredentials([f], "nope.io", undefined, { env, helpers: ["absent", "containers-auth.json"] })).rejects.toMatchObject({
      code: "REGISTRY_CREDENTIAL_HELPER_MISSING",
      message: expect.stringContaining('credential-helpers entry "absent" in registries.conf'),
    });
  });
});

describe("a client's credential source", () => {
  it("should run each helper once per server URL however many repositories ask", async () => {
    const log = join(dir, "calls.log");
    await writeFile(log, "");
    const f = await authFile("memo.json", { credHelpers: { "memo.io": "good" } });
    const source = credentialSource(undefined, () => [f], { env });
    const got = await Promise.all(["a/one", "b/two", "a/one"].map((r) => source("memo.io", r)));
    expect(got).toEqual([1, 2, 3].map(() => ({ username: "u-memo.io", password: "s3cret" })));
    expect((await readFile(log, "utf8")).trim().split("\n")).toEqual(["good memo.io"]);
  });

  it("should find docker's config.json under $DOCKER_CONFIG", () => {
    expect(defaultAuthFiles({ DOCKER_CONFIG: "/d", HOME: "/h" }, 1000).at(-1)).toBe("/d/config.json");
  });
});
