import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openBlobCache } from "@lazypull/blob-cache";
import { runCli } from "@lazypull/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const BLOB = `sha256:${"e5".repeat(32)}`;
// one entry on disk: payload + header (28 fixed + 79 key bytes + 2 block CRCs + header CRC)
const ENTRY = 100_000 + 28 + 79 + 8 + 4;
let dir: string;

const lazypull = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  runCli(args, {
    env: { ...process.env, LAZYPULL_CACHE_DIR: undefined, ...env },
    allowFail: true,
    timeoutMs: 60_000,
  });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "lazypull-cli-cache-"));
  const cache = await openBlobCache({ dir, memoryBytes: 0 });
  for (let i = 0; i < 4; i++) await cache.put({ blob: BLOB, id: `chunk:${i}` }, Buffer.alloc(100_000, i));
  await cache.get({ blob: BLOB, id: "chunk:0" }); // most recently used
  await cache.close();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("lazypull cache", () => {
  it("should report stats as JSON for the directory named by LAZYPULL_CACHE_DIR", async () => {
    const r = await lazypull(["cache", "stats", "--json"], { LAZYPULL_CACHE_DIR: dir });
    expect({ code: r.code, stats: JSON.parse(r.stdout) }).toEqual({
      code: 0,
      stats: { dir, entries: 4, bytes: 4 * ENTRY, maxBytes: 10 * 2 ** 30, blobs: 1, pinnedBlobs: [] },
    });
  });

  it("should list entries and prune least recently used ones down to --max-size", async () => {
    const ls = await lazypull(["cache", "ls", "--json", "--cache-dir", dir]);
    expect((JSON.parse(ls.stdout) as Array<{ id: string }>).map((e) => e.id).sort()).toEqual(["chunk:0", "chunk:1", "chunk:2", "chunk:3"]);
    const prune = await lazypull(["cache", "prune", "--json", "--cache-dir", dir, "--max-size", "250kB"]);
    expect(JSON.parse(prune.stdout)).toEqual({ evicted: 2, freedBytes: 2 * ENTRY, busy: false, entries: 2, bytes: 2 * ENTRY });
    const left = await lazypull(["cache", "ls", "--json", "--cache-dir", dir]);
    expect((JSON.parse(left.stdout) as Array<{ id: string }>).map((e) => e.id)).toContain("chunk:0");
  });

  it("should refuse a bad size with a clear one-line error", async () => {
    const r = await lazypull(["cache", "prune", "--cache-dir", dir, "--max-size", "lots"]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({
      code: 1,
      stderr: 'lazypull: BLOBCACHE_BAD_SIZE: not a size: "lots" (expected e.g. 512, 1MB, 10GiB)\n',
    });
  });
});
