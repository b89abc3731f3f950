import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseReference, RegistryClient } from "@lazypull/registry-client";
import { openStargz, type RangeReader } from "@lazypull/stargz-format";
import { importImage, run, startRegistry, type RegistryProcess } from "@lazypull/testkit";
import { TOC_DIGEST_ANNOTATION, TOC_OFFSET_ANNOTATION, UNCOMPRESSED_SIZE_ANNOTATION, tocLocationFromAnnotations } from "@lazypull/stargz-format";
import { convertImage, type ConvertImageResult } from "../src/index.js";

const sha = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const bufferReader = (b: Buffer): RangeReader => ({ size: b.length, read: async (o, l) => b.subarray(o, o + l) });

let registry: RegistryProcess;
let work: string;
let client: RegistryClient;
let source: string;
let first: ConvertImageResult;
const big = randomBytes(300_000);

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "lazypull-convert-test-"));
  registry = await startRegistry();
  client = new RegistryClient();
  // Two small layers: a tree with a multi-chunk file and a symlink, then one adding a file and a whiteout.
  const l1 = join(work, "l1");
  await mkdir(join(l1, "etc"), { recursive: true });
  await mkdir(join(l1, "usr", "bin"), { recursive: true });
  await writeFile(join(l1, "etc", "os-release"), "ID=test\n");
  await writeFile(join(l1, "usr", "bin", "big"), big);
  await run("ln", ["-s", "../etc/os-release", join(l1, "usr", "os-release")]);
  const l2 = join(work, "l2");
  await mkdir(join(l2, "etc"), { recursive: true });
  await writeFile(join(l2, "etc", "hostname"), "lazy\n");
  await writeFile(join(l2, "etc", ".wh.os-release"), "");
  for (const d of ["l1", "l2"]) await run("tar", ["--numeric-owner", "-C", join(work, d), "-cf", join(work, `${d}.tar`), "."]);
  const img = await importImage({
    registryHost: registry.host,
    repository: "src/app",
    tag: "v1",
    layers: [{ tar: join(work, "l1.tar") }, { tar: join(work, "l2.tar") }],
    config: { Cmd: ["/usr/bin/big"] },
  });
  source = img.ref;
  first = await convertImage({ client, source, destination: `${registry.host}/lazy/app:v1`, chunkSize: 64 * 1024, memoDir: join(work, "memo") });
});

afterAll(async () => {
  await client?.close();
  await registry?.stop();
  await rm(work, { recursive: true, force: true });
});

describe("convertImage", () => {
  it("should push eStargz layers whose annotations, diff_ids and TOCs check out", async () => {
    const resolved = await client.resolve(`${registry.host}/lazy/app:v1`);
    expect(resolved.manifestDigest).toBe(first.digest);
    expect(resolved.config.config?.Cmd).toEqual(["/usr/bin/big"]);
    expect(resolved.manifest.layers).toHaveLength(2);
    for (const [i, layer] of resolved.manifest.layers.entries()) {
      expect(layer.mediaType).toBe("application/vnd.oci.image.layer.v1.tar+gzip");
      const blob = await client.getBlob(resolved.ref, layer.digest);
      const tar = gunzipSync(blob);
      expect(sha(tar)).toBe(resolved.config.rootfs.diff_ids[i]);
      expect(layer.annotations?.[UNCOMPRESSED_SIZE_ANNOTATION]).toBe(String(tar.length));
      const reader = await openStargz(bufferReader(blob), { expectedTocDigest: layer.annotations?.[TOC_DIGEST_ANNOTATION] });
      expect(reader.format).toBe("estargz");
      // where the TOC is, so a lazy reader fetches exactly TOC + footer: checked against the blob's own footer
      const loc = tocLocationFromAnnotations(layer.annotations, layer.size);
      expect(loc).toEqual({ offset: reader.tocOffset, length: layer.size - 51 - reader.tocOffset, footerSize: 51 });
      const reads: number[][] = [];
      const counting: RangeReader = { size: blob.length, read: async (o, l) => (reads.push([o, l]), blob.subarray(o, o + l)) };
      await openStargz(counting, { expectedTocDigest: layer.annotations?.[TOC_DIGEST_ANNOTATION], tocLocation: loc! });
      expect(reads).toEqual([[reader.tocOffset, layer.size - reader.tocOffset]]);
    }
    const base = await openStargz(bufferReader(await client.getBlob(resolved.ref, resolved.manifest.layers[0]!.digest)));
    expect(await base.readFile("usr/bin/big")).toEqual(big);
    expect(base.chunksFor("usr/bin/big", 0, big.length).length).toBe(5);
    expect(base.lookup("usr/os-release")).toMatchObject({ type: "symlink", linkName: "../etc/os-release" });
    const top = await openStargz(bufferReader(await client.getBlob(resolved.ref, resolved.manifest.layers[1]!.digest)));
    expect(top.lookup("etc/.wh.os-release")).toMatchObject({ type: "reg", size: 0 });
    expect(first.layers.map((l) => l.outcome)).toEqual(["converted", "converted"]);
  });

  it("should reuse remembered conversions instead of converting again", async () => {
    const again = await convertImage({ client, source, destination: `${registry.host}/lazy/app:v1-again`, chunkSize: 64 * 1024, memoDir: join(work, "memo") });
    expect(again.layers.map((l) => l.outcome)).toEqual(["reused", "reused"]);
    // the memo keeps the TOC location, so the manifest (annotations included) is the same bytes
    expect(again.manifest.layers.every((l) => l.annotations?.[TOC_OFFSET_ANNOTATION])).toBe(true);
    expect(again.digest).toBe(first.digest);
  });

  it("should learn the TOC location from the blob's footer for conversions remembered without it", async () => {
    const memoDir = join(work, "memo");
    for (const name of await readdir(memoDir)) {
      const rec = JSON.parse(await readFile(join(memoDir, name), "utf8")) as Record<string, unknown>;
      delete rec.tocLocation;
      await writeFile(join(memoDir, name), JSON.stringify(rec));
    }
    const again = await convertImage({ client, source, destination: `${registry.host}/lazy/app:v1-old-memo`, chunkSize: 64 * 1024, memoDir });
    expect(again.layers.map((l) => l.outcome)).toEqual(["reused", "reused"]);
    expect(again.digest).toBe(first.digest);
    for (const name of await readdir(memoDir)) expect(JSON.parse(await readFile(join(memoDir, name), "utf8"))).toHaveProperty("tocLocation.footerSize", 51);
  });

  it("should keep layers that already are eStargz", async () => {
    const events: string[] = [];
    const twice = await convertImage({
      client,
      source: `${registry.host}/lazy/app:v1`,
      destination: `${registry.host}/other/app:v1`,
      onProgress: (e) => events.push(`${e.index}:${e.phase}`),
    });
    expect(twice.layers.map((l) => [l.outcome, l.digest])).toEqual(first.layers.map((l) => ["already-estargz", l.digest]));
    expect(twice.manifest.layers.map((l) => l.annotations)).toEqual(first.manifest.layers.map((l) => l.annotations));
    expect(twice.digest).toBe(first.digest);
    // layers run in parallel: the order in which they finish is not fixed
    expect(events.slice(0, 2)).toEqual(["0:waiting", "1:waiting"]);
    expect(events.slice(2).sort()).toEqual(["0:reused", "1:reused"]);
  });

  it("should put prioritised files first and report the ones no layer has", async () => {
    const res = await convertImage({
      client,
      source,
      destination: `${registry.host}/lazy/app:v1-prio`,
      chunkSize: 64 * 1024,
      prioritizedFiles: ["usr/bin/big", "nope/missing"],
    });
    expect(res.missingPrioritized).toEqual(["nope/missing"]);
    const blob = await client.getBlob(parseReference(res.reference), res.layers[0]!.digest);
    const reader = await openStargz(bufferReader(blob));
    // the prefetch range ends after the prioritised file's chunks
    const last = reader.chunksFor("usr/bin/big", 0, big.length).at(-1)!;
    expect(reader.prefetchEnd).toBeGreaterThanOrEqual(last.compressedEnd);
  });

  it("should name the missing source image in its error", async () => {
    await expect(convertImage({ client, source: `${registry.host}/src/nope:v1`, destination: `${registry.host}/lazy/nope:v1` })).rejects.toMatchObject({
      code: "REGISTRY_NOT_FOUND",
    });
  });
});
