import { mkdir, mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openBlobCache, type BlobCache } from "@lazypull/blob-cache";
import { RegistryClient, parseReference } from "@lazypull/registry-client";
import type { Descriptor } from "@lazypull/registry-client";
import { fileRangeReader, openStargz } from "@lazypull/stargz-format";
import { debianRootfsTar, freePort, run, startRegistry, type RegistryProcess } from "@lazypull/testkit";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mountLazyFs, type LazyFs } from "../src/index.js";
import { convertCached, pushImage, type ConvertedBlob } from "./helpers/image.js";
import { RestartableRegistry } from "./helpers/registry-process.js";
import { tarSnapshot, type TreeEntry } from "./helpers/tar-snapshot.js";

const log = pino({ level: process.env.LAZYPULL_TEST_LOG ?? "silent" });

/** Runs a command in a child process: never read the mount from the process that serves it. */
const sh = (cmd: string, args: string[]) => run(cmd, args, { allowFail: true });

describe("registry faults under a mounted layer", () => {
  let registry: RegistryProcess;
  let serving: RestartableRegistry;
  let tmp: string;
  let blob: ConvertedBlob;
  let layer: Descriptor;
  let expected: Map<string, TreeEntry>;
  const cleanups: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), "lazypull-fusefs-faults-"));
    const tar = await debianRootfsTar();
    blob = await convertCached(tar, "debian-bookworm-minbase");
    expected = await tarSnapshot(tar);
    registry = await startRegistry();
    const pusher = new RegistryClient();
    layer = (await pushImage(pusher, `${registry.host}/debian:bookworm`, [blob])).layers[0]!;
    await pusher.close();
    // the mount reads from a second registry process on the same storage, which the tests kill
    serving = new RestartableRegistry(registry.storageDir, await freePort(), tmp);
    await serving.start();
  });

  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    await serving?.kill();
    await registry?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  async function freshMount(name: string, prefetch: "none" | "all", attempts = 4, backgroundSilenceMs?: number): Promise<{ fs: LazyFs; dir: string }> {
    const mnt = join(tmp, `mnt-${name}`);
    await mkdir(mnt, { recursive: true });
    const cache: BlobCache = await openBlobCache({ dir: join(tmp, `cache-${name}`) });
    const client = new RegistryClient({ retry: { maxAttempts: 2, baseDelayMs: 50, maxTotalMs: 1000 } });
    const fs = await mountLazyFs({
      mountpoint: mnt,
      source: client,
      cache,
      prefetch,
      logger: log,
      retry: { attempts, delayMs: 250 },
      ...(backgroundSilenceMs !== undefined ? { backgroundSilenceMs } : {}),
    });
    cleanups.push(async () => {
      await fs.close();
      await cache.close();
      await client.close();
    });
    const ref = parseReference(`${serving.host}/debian:bookworm`);
    return { fs, dir: (await fs.addLayer({ ref, descriptor: layer })).dir };
  }

  /**
   * Flips one byte in the middle of the first chunk of `path` in the registry's stored blob while `fn`
   * runs (`restore` puts it back early); the byte is restored afterwards whatever happens.
   */
  async function withCorruptChunk(path: string, fn: (restore: () => Promise<void>) => Promise<void>): Promise<void> {
    const reader = await openStargz(await fileRangeReader(blob.path), { expectedTocDigest: blob.tocDigest });
    const victim = reader.chunksFor(path, 0, 1)[0]!;
    const hex = blob.blobDigest.slice(7);
    const data = join(registry.storageDir, "docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data");
    const at = Math.floor((victim.compressedOffset + victim.compressedEnd) / 2);
    const fh = await open(data, "r+");
    const orig = Buffer.alloc(1);
    await fh.read(orig, 0, 1, at);
    const restore = async () => void (await fh.write(orig, 0, 1, at));
    try {
      await fh.write(Buffer.from([orig[0]! ^ 0xff]), 0, 1, at);
      await fn(restore);
    } finally {
      await restore();
      await fh.close();
    }
  }

  it("should answer EIO for a corrupted chunk, keep serving other files, and recover once the bytes are good", async () => {
    await withCorruptChunk("usr/bin/ls", async (restore) => {
      const { fs, dir } = await freshMount("corrupt", "none");
      const bad = await sh("cat", [join(dir, "usr/bin/ls")]);
      expect({ code: bad.code, error: bad.stderr.includes("Input/output error") }).toEqual({ code: 1, error: true });
      expect(fs.progress()[0]!.errors).toBeGreaterThan(0);
      const good = await sh("cat", [join(dir, "usr/lib/os-release")]);
      expect(good.stdout).toContain("bookworm");
      await restore();
      const again = await sh("sha256sum", [join(dir, "usr/bin/ls")]);
      expect(again.stdout.split(" ")[0]).toEqual(expected.get("usr/bin/ls")!.sha256);
    });
  });

  it("should fetch the rest of a layer in the background and give up on a chunk that is wrong for good (state error, no endless retry)", async () => {
    await withCorruptChunk("usr/bin/ls", async () => {
      const { fs } = await freshMount("background-bad-chunk", "all", 2, 0);
      const deadline = Date.now() + 120_000;
      while (fs.progress()[0]!.state !== "error") {
        if (Date.now() > deadline) throw new Error(`background fetch never gave up: ${JSON.stringify(fs.progress()[0])}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      const p = fs.progress()[0]!;
      // everything but the bad chunk's member (and the TOC, fetched at open) came in
      expect(p.bytesFetched).toBeGreaterThan(blob.blobSize * 0.9);
      expect(p.lastError).toMatch(/digest|inflate/);
    });
  });

  it("should survive the registry being killed mid-fetch and restarted on the same port", { timeout: 300_000 }, async () => {
    // files whose chunks lie far into the blob, so the background fetch has not reached them yet
    const reader = await openStargz(await fileRangeReader(blob.path), { expectedTocDigest: blob.tocDigest });
    const late = [...reader.walk()]
      .filter((n) => n.type === "reg" && n.size > 100_000)
      .map((n) => ({ path: n.path, at: reader.chunksFor(n.path, 0, 1)[0]!.compressedOffset }))
      .filter((f) => f.at > blob.blobSize * 0.7)
      .slice(0, 3)
      .map((f) => f.path);
    expect(late).toHaveLength(3);
    // enough retry budget (~8 s) to outlast a restart
    const { fs, dir } = await freshMount("restart", "all", 6);
    while (fs.progress()[0]!.bytesFetched < 4 * 1024 * 1024) await new Promise((r) => setTimeout(r, 20));
    await serving.kill();
    const reading = sh("sha256sum", late.map((f) => join(dir, f)));
    // the outage is seen: fetches fail and are counted
    while (fs.progress()[0]!.errors === 0) await new Promise((r) => setTimeout(r, 20));
    await serving.start();
    const r = await reading;
    expect(r.stdout.trim().split("\n")).toEqual(late.map((f) => `${expected.get(f)!.sha256}  ${join(dir, f)}`));
    const deadline = Date.now() + 200_000;
    while (fs.progress()[0]!.state !== "complete" && Date.now() < deadline) await new Promise((res) => setTimeout(res, 200));
    const p = fs.progress()[0]!;
    console.log(`after a registry restart: state ${p.state}, ${p.requests} requests, ${p.errors} errors (last: ${p.lastError})`);
    expect(p.state).toBe("complete");
  });
});
