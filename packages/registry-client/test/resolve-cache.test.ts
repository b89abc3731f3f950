import { startRegistry, type RegistryProcess } from "@lazypull/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MediaType, RegistryClient, type ContentCache } from "../src/index.js";
import { makeImage, pushImage } from "./helpers.js";

let reg: RegistryProcess;
let client: RegistryClient;
let repo: string;
let indexDigest: string;
let amd: ReturnType<typeof makeImage>;

/** the ContentCache contract in memory (blob-cache's cache is the real one) */
class MapCache implements ContentCache {
  readonly map = new Map<string, Buffer>();
  async get(key: { blob: string; id: string }) {
    return this.map.get(`${key.blob}|${key.id}`);
  }
  async put(key: { blob: string; id: string }, data: Buffer) {
    this.map.set(`${key.blob}|${key.id}`, Buffer.from(data));
  }
}

beforeAll(async () => {
  reg = await startRegistry();
  client = new RegistryClient({ registriesConf: false });
  amd = makeImage([100, 200], "amd64");
  const arm = makeImage([300], "arm64");
  repo = `${reg.host}/cache/multi`;
  await pushImage(client, `${repo}@${amd.manifestDigest}`, amd);
  await pushImage(client, `${repo}@${arm.manifestDigest}`, arm);
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciIndex,
      manifests: [
        { mediaType: MediaType.OciManifest, digest: amd.manifestDigest, size: amd.manifest.length, platform: { os: "linux", architecture: "amd64" } },
        { mediaType: MediaType.OciManifest, digest: arm.manifestDigest, size: arm.manifest.length, platform: { os: "linux", architecture: "arm64" } },
      ],
    }),
  );
  indexDigest = await client.pushManifest(`${repo}:latest`, index, MediaType.OciIndex);
});
afterAll(async () => {
  await client?.close();
  await reg?.stop();
});

/** requests a resolve made, on a client of its own */
async function resolveCounting(ref: string, cache: ContentCache) {
  const c = new RegistryClient({ registriesConf: false });
  try {
    const r = await c.resolve(ref, { platform: "linux/amd64", cache });
    return { requests: c.stats().requests, digest: r.manifestDigest, config: r.config, indexDigest: r.indexDigest };
  } finally {
    await c.close();
  }
}

describe("resolve with a content cache (warm hosts)", () => {
  it("should cost one request by tag and none by digest once the image was resolved", async () => {
    const cache = new MapCache();
    const cold = await resolveCounting(`${repo}:latest`, cache);
    expect(cold.requests).toBeGreaterThanOrEqual(3); // index, manifest, config
    expect([cold.digest, cold.indexDigest, cold.config.architecture]).toEqual([amd.manifestDigest, indexDigest, "amd64"]);
    const byTag = await resolveCounting(`${repo}:latest`, cache);
    expect(byTag).toEqual({ ...cold, requests: 1 });
    expect(await resolveCounting(`${repo}@${indexDigest}`, cache)).toEqual({ ...cold, requests: 0 });
    expect(await resolveCounting(`${repo}@${amd.manifestDigest}`, cache)).toEqual({ ...cold, indexDigest: undefined, requests: 0 });
  });

  it("should drop a cached config or manifest that does not match its digest, fetch it again and keep the good one", async () => {
    const cache = new MapCache();
    const cold = await resolveCounting(`${repo}@${amd.manifestDigest}`, cache);
    const configKey = `${amd.configDigest}|oci:config`;
    const manifestKey = `${amd.manifestDigest}|oci:manifest`;
    expect([...cache.map.keys()].sort()).toEqual([configKey, manifestKey].sort());
    const good = new Map(cache.map);

    // a config with one byte changed: still JSON-ish, a different image if it were believed
    const bad = Buffer.from(good.get(configKey)!);
    bad[bad.indexOf("amd64")] = "A".charCodeAt(0);
    cache.map.set(configKey, bad);
    expect(await resolveCounting(`${repo}@${amd.manifestDigest}`, cache)).toEqual({ ...cold, requests: 1 });
    expect(cache.map.get(configKey)).toEqual(good.get(configKey));

    cache.map.set(manifestKey, Buffer.from("{}"));
    expect(await resolveCounting(`${repo}@${amd.manifestDigest}`, cache)).toEqual({ ...cold, requests: 1 });
    expect(cache.map.get(manifestKey)).toEqual(good.get(manifestKey));
  });

  it("should still resolve when the cache fails", async () => {
    const broken: ContentCache = {
      get: async () => {
        throw new Error("disk on fire");
      },
      put: async () => {
        throw new Error("disk on fire");
      },
    };
    const r = await resolveCounting(`${repo}:latest`, broken);
    expect(r.digest).toBe(amd.manifestDigest);
  });
});
