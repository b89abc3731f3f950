import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { runSource } from "@lazypull/testkit";
import { afterAll, describe, expect, it } from "vitest";
import { openBlobCache } from "../src/index.js";

const HAMMER = resolve(import.meta.dirname, "fixtures/hammer.ts");
const KEYS = 24;
const dirs: string[] = [];

afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

interface HammerReport {
  fetches: Record<string, number>;
  served: number;
  mismatches: number;
  corruptDropped: number;
}

describe("two processes on one cache", () => {
  it("should fetch each key at most once per process and never serve a torn entry", async () => {
    const dir = await mkdtemp(join(tmpdir(), "blob-cache-shared-"));
    dirs.push(dir);
    const barrier = await mkdtemp(join(tmpdir(), "blob-cache-barrier-"));
    dirs.push(barrier);
    const hammer = () =>
      runSource(HAMMER, [dir, String(KEYS), "12", String(300_000), barrier, "2"], { timeoutMs: 90_000 }).then((r) => JSON.parse(r.stdout) as HammerReport);
    const reports = await Promise.all([hammer(), hammer()]);

    for (const r of reports) {
      expect({ mismatches: r.mismatches, corruptDropped: r.corruptDropped }).toEqual({ mismatches: 0, corruptDropped: 0 });
      expect(Object.values(r.fetches).every((n) => n === 1)).toBe(true);
      expect(r.served).toBeGreaterThan(KEYS * 8);
    }
    // between them every key was fetched (a process that found the other's entry did not fetch it)
    const fetchedBy = Array.from({ length: KEYS }, (_, id) => reports.filter((r) => r.fetches[id]).length);
    expect(fetchedBy.every((n) => n >= 1 && n <= 2)).toBe(true);
    // they started together, so both missed and fetched: the race was real
    expect(reports.map((r) => Object.keys(r.fetches).length > 0)).toEqual([true, true]);

    const cache = await openBlobCache({ dir, memoryBytes: 0 });
    try {
      await cache.idle();
      expect({ entries: cache.stats().entries, tmpCleaned: cache.stats().tmpCleaned }).toEqual({ entries: KEYS, tmpCleaned: 0 });
    } finally {
      await cache.close();
    }
  });
});
