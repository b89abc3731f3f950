import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { startRegistry, type RegistryProcess } from "@lazypull/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MediaType, RegistryClient, parseReference } from "../src/index.js";
import { makeImage, pushImage, sha256 } from "./helpers.js";

let reg: RegistryProcess;
let client: RegistryClient;

beforeAll(async () => {
  reg = await startRegistry();
  client = new RegistryClient({ registriesConf: false });
});
afterAll(async () => {
  await client?.close();
  await reg?.stop();
});

describe("against a real docker-registry (anonymous)", () => {
  it("should push a multi-layer image and resolve it back byte for byte", async () => {
    const img = makeImage([3000, 70_000, 1]);
    const ref = `${reg.host}/rt/app:v1`;
    expect(await pushImage(client, ref, img)).toEqual(img.manifestDigest);
    const r = await client.resolve(ref);
    expect({ digest: r.manifestDigest, bytes: r.manifestBytes, config: r.config, ref: r.ref.toString() }).toEqual({
      digest: img.manifestDigest,
      bytes: img.manifest,
      config: JSON.parse(img.config.toString()),
      ref,
    });
    for (const l of img.layers) {
      const stream = await client.fetchBlob(parseReference(ref), l.digest);
      const chunks: Buffer[] = [];
      for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
      expect(Buffer.concat(chunks)).toEqual(l.bytes);
      expect(await client.headBlob(ref, l.digest)).toEqual({ digest: l.digest, size: l.bytes.length, mediaType: "application/octet-stream" });
    }
    // by digest too
    const byDigest = await client.getManifest(`${reg.host}/rt/app@${img.manifestDigest}`);
    expect([byDigest.kind, byDigest.digest]).toEqual(["manifest", img.manifestDigest]);
    expect(await client.listTags(ref)).toEqual(["v1"]);
  });

  it("should push an index with two platforms and pick each platform on resolve", async () => {
    const amd = makeImage([100, 200], "amd64");
    const arm = makeImage([300], "arm64");
    const repo = `${reg.host}/rt/multi`;
    const dAmd = await pushImage(client, `${repo}@${amd.manifestDigest}`, amd);
    const dArm = await pushImage(client, `${repo}@${arm.manifestDigest}`, arm);
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciIndex,
        manifests: [
          { mediaType: MediaType.OciManifest, digest: dAmd, size: amd.manifest.length, platform: { os: "linux", architecture: "amd64" } },
          { mediaType: MediaType.OciManifest, digest: dArm, size: arm.manifest.length, platform: { os: "linux", architecture: "arm64", variant: "v8" } },
        ],
      }),
    );
    const dIndex = await client.pushManifest(`${repo}:latest`, index, MediaType.OciIndex);
    const top = await client.getManifest(`${repo}:latest`);
    expect([top.kind, top.digest, top.mediaType]).toEqual(["index", dIndex, MediaType.OciIndex]);
    const a = await client.resolve(`${repo}:latest`, { platform: "linux/amd64" });
    const b = await client.resolve(`${repo}:latest`, { platform: { os: "linux", architecture: "arm64" } });
    expect([a.manifestDigest, a.config.architecture, a.indexDigest, b.manifestDigest, b.config.architecture]).toEqual([dAmd, "amd64", dIndex, dArm, "arm64"]);
    await expect(client.resolve(`${repo}:latest`, { platform: "linux/s390x" })).rejects.toMatchObject({
      code: "REGISTRY_NO_MATCHING_PLATFORM",
      context: { registry: reg.host, repository: "rt/multi", digest: dIndex },
    });
  });

  it("should read single ranges and several ranges in one multipart request", async () => {
    const blob = randomBytes(200_000);
    const d = sha256(blob);
    const ref = parseReference(`${reg.host}/rt/ranges`);
    await client.pushBlob(ref, d, blob.length, blob);
    expect(await client.fetchRange(ref, d, { offset: 12_345, length: 1000 })).toEqual(blob.subarray(12_345, 13_345));
    const ranges = [
      { offset: 150_000, length: 10 },
      { offset: 0, length: 1 },
      { offset: 199_990, length: 10 },
      { offset: 5, length: 0 },
      { offset: 70_000, length: 4096 },
    ];
    const before = client.stats();
    const got = await client.fetchRanges(ref, d, ranges);
    const after = client.stats();
    expect(got).toEqual(ranges.map((r) => blob.subarray(r.offset, r.offset + r.length)));
    // Distribution 2.8 serves blobs with Go's http.ServeContent, which does answer multipart/byteranges
    expect([after.requests - before.requests, after.multiRangeHits - before.multiRangeHits]).toEqual([1, 1]);
    await expect(client.fetchRange(ref, d, { offset: 300_000, length: 1 })).rejects.toMatchObject({ code: "REGISTRY_RANGE_NOT_SATISFIABLE", context: { registry: reg.host, repository: "rt/ranges", digest: d, status: 416 } });
  });

  it("should upload large blobs in PATCH chunks from a stream, skip existing blobs and mount across repositories", async () => {
    const small = new RegistryClient({ registriesConf: false, monolithicUploadLimit: 1000, uploadChunkSize: 64 * 1024 });
    try {
      const blob = randomBytes(200_000);
      const d = sha256(blob);
      const res = await small.pushBlob(`${reg.host}/rt/chunked`, d, blob.length, () => Readable.from([blob.subarray(0, 70_000), blob.subarray(70_000)]));
      expect(res).toEqual({ digest: d, size: blob.length, outcome: "uploaded" });
      const patches = small.stats();
      expect(await small.getBlob(`${reg.host}/rt/chunked`, d)).toEqual(blob);
      expect(await small.pushBlob(`${reg.host}/rt/chunked`, d, blob.length, blob)).toEqual({ digest: d, size: blob.length, outcome: "exists" });
      expect(await small.pushBlob(`${reg.host}/rt/other`, d, blob.length, blob, { from: "rt/chunked" })).toEqual({ digest: d, size: blob.length, outcome: "mounted" });
      expect(small.stats().bytesSent).toEqual(patches.bytesSent);
      // 4 chunks of 64 KiB: HEAD, POST, 4 PATCH, PUT
      expect(patches.requests).toEqual(7);
    } finally {
      await small.close();
    }
  });

  it("should refuse bytes that do not match their digest, on push and on pull", async () => {
    const blob = randomBytes(1000);
    const wrong = sha256(Buffer.from("something else"));
    await expect(client.pushBlob(`${reg.host}/rt/bad`, wrong, blob.length, blob)).rejects.toMatchObject({
      code: "DIGEST_MISMATCH",
      context: { registry: reg.host, repository: "rt/bad", digest: wrong },
    });
    const img = makeImage([10]);
    await pushImage(client, `${reg.host}/rt/bad:t`, img);
    const other = sha256(Buffer.from("x"));
    await expect(client.getManifest(`${reg.host}/rt/bad@${other}`)).rejects.toMatchObject({ code: "REGISTRY_NOT_FOUND" });
    await expect(client.getManifest(`${reg.host}/rt/bad:missing`)).rejects.toMatchObject({
      code: "REGISTRY_NOT_FOUND",
      context: { registry: reg.host, repository: "rt/bad", status: 404, registryErrors: ["MANIFEST_UNKNOWN"] },
    });
    await expect(client.headBlob(`${reg.host}/rt/bad`, other)).rejects.toMatchObject({ code: "REGISTRY_NOT_FOUND", context: { digest: other } });
    expect(await client.blobExists(`${reg.host}/rt/bad`, other)).toEqual(false);
  });

  it("should stop on an aborted signal", async () => {
    const ac = new AbortController();
    ac.abort(new Error("user gave up"));
    await expect(client.getManifest(`${reg.host}/rt/app:v1`, { signal: ac.signal })).rejects.toThrow("user gave up");
  });
});
