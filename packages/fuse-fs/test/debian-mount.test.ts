import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openBlobCache, type BlobCache } from "@lazypull/blob-cache";
import { RegistryClient, parseReference } from "@lazypull/registry-client";
import type { Descriptor, ImageReference } from "@lazypull/registry-client";
import { debianRootfsTar, run, startRegistry, type RegistryProcess } from "@lazypull/testkit";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isMountPoint } from "@lazypull/host";
import { mountLazyFs, type LazyFs } from "../src/index.js";
import { countingProxy } from "./helpers/counting-proxy.js";
import { convertCached, pushImage, type ConvertedBlob } from "./helpers/image.js";
import { mountSnapshot, tarSnapshot, type TreeEntry } from "./helpers/tar-snapshot.js";

const log = pino({ level: process.env.LAZYPULL_TEST_LOG ?? "silent" });

/** Runs a command in a child process: never read the mount from the process that serves it. */
const sh = (cmd: string, args: string[]) => run(cmd, args, { allowFail: true });

describe("a converted Debian bookworm image, mounted lazily", () => {
  let registry: RegistryProcess;
  let tmp: string;
  let tar: string;
  let blob: ConvertedBlob;
  let layer: Descriptor;
  const cleanups: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), "lazypull-fusefs-"));
    tar = await debianRootfsTar();
    blob = await convertCached(tar, "debian-bookworm-minbase");
    registry = await startRegistry();
    const pusher = new RegistryClient();
    layer = (await pushImage(pusher, `${registry.host}/debian:bookworm`, [blob])).layers[0]!;
    await pusher.close();
  });

  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    await registry?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  /** a fresh cache, client, counting proxy and mount; cleaned up after the file */
  async function freshMount(name: string, prefetch: "none" | "landmark" | "all", extra: { accessLogPath?: string } = {}) {
    const proxy = await countingProxy(registry);
    cleanups.push(() => proxy.close());
    const ref: ImageReference = parseReference(`${proxy.host}/debian:bookworm`);
    const mnt = join(tmp, `mnt-${name}`);
    await sh("mkdir", ["-p", mnt]);
    const cache: BlobCache = await openBlobCache({ dir: join(tmp, `cache-${name}`) });
    const client = new RegistryClient({ retry: { maxAttempts: 2, maxTotalMs: 2000 } });
    const fs: LazyFs = await mountLazyFs({ mountpoint: mnt, source: client, cache, prefetch, logger: log, ...extra });
    cleanups.push(async () => {
      await fs.close();
      await cache.close();
      await client.close();
    });
    const { dir } = await fs.addLayer({ ref, descriptor: layer });
    return { fs, dir, mnt, cache, proxy };
  }

  it("should serve every file with exactly the source tar's bytes and metadata", { timeout: 400_000 }, async () => {
    const { fs, dir, mnt } = await freshMount("walk", "none");
    // each layer in OCI form and in kernel overlayfs form
    expect((await sh("ls", [mnt])).stdout.trim().split("\n")).toEqual([layer.digest.slice(7), `${layer.digest.slice(7)}.overlay`]);
    const expected = await tarSnapshot(tar);
    const actual = await mountSnapshot(dir);
    const strip = (e: TreeEntry): Omit<TreeEntry, "ino"> => {
      const { ino: _ino, ...rest } = e;
      // directory link counts are not part of a tar
      return e.mode >> 12 === 0o04 ? { ...rest, nlink: undefined } : rest;
    };
    expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort());
    const mismatches: unknown[] = [];
    for (const [p, want] of expected) {
      const got = actual.get(p)!;
      const a = strip(got);
      const w = strip(want);
      if (JSON.stringify({ ...a, nlink: a.nlink }) !== JSON.stringify({ ...a, ...w })) mismatches.push({ path: p, want: w, got: a });
    }
    expect(mismatches.slice(0, 5)).toEqual([]);
    // hardlinks share one inode
    const byTarget = new Map<string, Set<number>>();
    for (const [p, e] of expected) if ((e.nlink ?? 1) > 1) byTarget.set(e.sha256! + e.mode, (byTarget.get(e.sha256! + e.mode) ?? new Set()).add(actual.get(p)!.ino!));
    for (const inos of byTarget.values()) expect(inos.size).toBe(1);
    const p = fs.progress()[0]!;
    console.log(`walk of ${actual.size} entries: ${p.requests} requests, ${(p.bytesFetched / 1e6).toFixed(1)} MB of ${(p.bytesTotal / 1e6).toFixed(1)} MB`);
    expect(await isMountPoint(mnt)).toBe(true);
  });

  it("should read /etc/os-release from a cold mount with at most 3 requests to the layer blob", async () => {
    const { fs, dir, proxy } = await freshMount("osrelease", "none");
    const text = (await sh("cat", [join(dir, "etc/os-release")])).stdout;
    expect(text).toContain('VERSION_CODENAME=bookworm');
    const blobRequests = proxy.blobRequests(layer.digest);
    console.log(`cold /etc/os-release: ${blobRequests.length} requests to the layer blob (${JSON.stringify(blobRequests.map((r) => r.range))})`);
    expect(blobRequests.length).toBeLessThanOrEqual(3);
    expect(fs.progress()[0]!.requests).toBe(blobRequests.length);
  });

  it("should serve 16 parallel readers of overlapping files correctly, fetching each chunk once", async () => {
    const { fs, dir, proxy } = await freshMount("parallel", "none");
    const files = ["usr/bin/bash", "usr/lib/x86_64-linux-gnu/libc.so.6", "usr/bin/ls", "usr/lib/os-release"];
    const results = await Promise.all(
      Array.from({ length: 16 }, (_, i) => sh("sha256sum", [join(dir, files[i % files.length]!), join(dir, files[(i + 1) % files.length]!)])),
    );
    const tarTree = await tarSnapshot(tar);
    for (const [i, r] of results.entries()) {
      const want = [files[i % files.length]!, files[(i + 1) % files.length]!].map((f) => `${tarTree.get(f)!.sha256}  ${join(dir, f)}`);
      expect(r.stdout.trim().split("\n")).toEqual(want);
    }
    const ranges = proxy
      .blobRequests(layer.digest)
      .filter((r) => r.range)
      .map((r) => r.range!.replace("bytes=", "").split("-").map(Number) as [number, number]);
    // no byte of the blob was fetched twice (footer+TOC tail aside, every range is disjoint)
    const sorted = ranges.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < sorted.length; i++) expect(sorted[i]![0]).toBeGreaterThan(sorted[i - 1]![1]);
    console.log(`16 parallel readers: ${sorted.length} range requests, ${fs.progress()[0]!.bytesFetched} bytes`);
  });

  it("should prefetch the whole layer in the background and then serve without the registry", async () => {
    const log = join(tmp, "access.log");
    const { fs, dir, proxy } = await freshMount("prefetch", "all", { accessLogPath: log });
    const deadline = Date.now() + 90_000;
    while (fs.progress()[0]!.state !== "complete" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    const done = fs.progress()[0]!;
    expect(done.state).toBe("complete");
    const before = proxy.requests.length;
    await sh("cat", [join(dir, "etc/os-release"), join(dir, "usr/bin/bash")]);
    expect(proxy.requests.length - before).toBe(0);
    expect(fs.progress()[0]!.requests).toBe(done.requests);
    console.log(`prefetch all: ${done.requests} requests, ${done.bytesFetched} of ${done.bytesTotal} bytes`);
    await fs.close();
    expect((await readFile(log, "utf8")).split("\n").filter(Boolean)).toEqual([
      // /etc/os-release is a symlink: the read lands on its target
      `${layer.digest.slice(7)}/usr/lib/os-release`,
      `${layer.digest.slice(7)}/usr/bin/bash`,
    ]);
  });

  it("should answer writes with EROFS", async () => {
    const { dir } = await freshMount("rofs", "none");
    const r = await sh("touch", [join(dir, "etc/new-file")]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("Read-only file system");
  });
});
