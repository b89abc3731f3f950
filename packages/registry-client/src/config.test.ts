import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultAuthFiles, lookupCredentials } from "./credentials.js";
import { isLoopbackRegistry, matchesInsecure } from "./insecure.js";
import { selectPlatform } from "./platform.js";
import { backoffMs, DEFAULT_RETRY, parseRetryAfter } from "./retry.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "rc-unit-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("credentials", () => {
  it("should list auth files in podman's order", () => {
    expect(defaultAuthFiles({ REGISTRY_AUTH_FILE: "/a.json", XDG_RUNTIME_DIR: "/run/user/0", HOME: "/h" }, 0)).toEqual([
      "/a.json",
      "/run/user/0/containers/auth.json",
      "/h/.config/containers/auth.json",
      "/h/.docker/config.json",
    ]);
  });

  it("should read podman's runtime auth file under /run/containers/UID where XDG_RUNTIME_DIR is unset (root under sudo, a service)", () => {
    expect(defaultAuthFiles({ HOME: "/root" }, 0)).toEqual(["/run/containers/0/auth.json", "/root/.config/containers/auth.json", "/root/.docker/config.json"]);
    expect(defaultAuthFiles({ HOME: "/home/u", XDG_CONFIG_HOME: "/cfg", DOCKER_CONFIG: "/dk" }, 1000)).toEqual([
      "/run/containers/1000/auth.json",
      "/cfg/containers/auth.json",
      "/dk/config.json",
    ]);
  });

  it("should decode base64 auth, prefer earlier files and namespace keys, and map docker.io's legacy key", async () => {
    const a = join(dir, "auth.json");
    const b = join(dir, "config.json");
    const enc = (s: string) => Buffer.from(s).toString("base64");
    await writeFile(a, JSON.stringify({ auths: { "reg.io/team": { auth: enc("team:pw:with:colons") } } }));
    await writeFile(b, JSON.stringify({ auths: { "reg.io": { auth: enc("u:p") }, "https://index.docker.io/v1/": { auth: enc("hub:x") } } }));
    const files = [join(dir, "missing.json"), a, b];
    expect(await lookupCredentials(files, "reg.io", "team/app")).toEqual({ username: "team", password: "pw:with:colons" });
    expect(await lookupCredentials(files, "reg.io", "other/app")).toEqual({ username: "u", password: "p" });
    expect(await lookupCredentials(files, "docker.io", "library/debian")).toEqual({ username: "hub", password: "x" });
    expect(await lookupCredentials(files, "nope.io")).toBeUndefined();
  });
});

describe("insecure registries", () => {
  it("should use plain HTTP by default only for loopback", () => {
    expect(["localhost:5000", "127.0.0.1:5000", "127.9.9.9", "[::1]:5000", "reg.io", "10.0.0.1:5000", "localhost.evil.io"].map(isLoopbackRegistry)).toEqual([
      true,
      true,
      true,
      true,
      false,
      false,
      false,
    ]);
  });

  it("should match insecure entries by host[:port] exactly", () => {
    const entries = ["a.io:5000", "c.io"];
    expect(["a.io:5000", "b.io", "c.io"].map((r) => matchesInsecure(r, entries))).toEqual([true, false, true]);
  });

  it("should match a *.domain entry on any port of any subdomain, as registries.conf's wildcards do", () => {
    const hosts = ["reg.corp.io", "reg.corp.io:5000", "a.b.corp.io:443", "corp.io", "reg.corp.io.evil:5000", "xcorp.io:5000"];
    expect(Object.fromEntries(hosts.map((r) => [r, matchesInsecure(r, ["*.corp.io"])]))).toEqual({
      "reg.corp.io": true,
      "reg.corp.io:5000": true,
      "a.b.corp.io:443": true,
      "corp.io": false,
      "reg.corp.io.evil:5000": false,
      "xcorp.io:5000": false,
    });
  });
});

describe("platform selection", () => {
  const m = (platform: object, n: number) => ({ mediaType: "x", digest: `sha256:${String(n).repeat(64)}`, size: 1, platform }) as never;
  const list = [m({ os: "unknown", architecture: "unknown" }, 1), m({ os: "linux", architecture: "arm64", variant: "v8" }, 2), m({ os: "linux", architecture: "arm", variant: "v7" }, 3), m({ os: "linux", architecture: "amd64" }, 4)];

  it("should match os/arch with arm64's v8 normalised and variants exact", () => {
    expect(selectPlatform(list, { os: "linux", architecture: "arm64" })).toBe(list[1]);
    expect(selectPlatform(list, { os: "linux", architecture: "arm", variant: "v7" })).toBe(list[2]);
    expect(selectPlatform(list, { os: "linux", architecture: "arm", variant: "v6" })).toBeUndefined();
    expect(selectPlatform(list, { os: "linux", architecture: "amd64" })).toBe(list[3]);
    expect(selectPlatform(list, { os: "linux", architecture: "s390x" })).toBeUndefined();
  });
});

describe("retry timing", () => {
  it("should parse Retry-After seconds and dates and bound jittered backoff", () => {
    expect(parseRetryAfter("3")).toEqual(3000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4_000)).toEqual(6000);
    expect(parseRetryAfter("soon")).toBeUndefined();
    expect([1, 2, 3, 10].map((a) => backoffMs(DEFAULT_RETRY, a, () => 1))).toEqual([100, 200, 400, 5000]);
  });
});
