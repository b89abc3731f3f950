import type { ChildProcess, ChildProcessByStdio } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Readable } from "node:stream";
import { spawnSource } from "@lazypull/testkit";
import { afterAll, describe, expect, it } from "vitest";
import { openBlobCache } from "../src/index.js";
import { content } from "./fixtures/content.js";

const WRITER = resolve(import.meta.dirname, "fixtures/writer.ts");
const SIZE = 6 * 2 ** 20;
const dirs: string[] = [];
const children = new Set<ChildProcess>();

afterAll(async () => {
  for (const c of children) c.kill("SIGKILL");
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

/** Runs the writer until it has finished `minEntries` puts and a temp file is being written, then kill -9. */
async function killMidWrite(dir: string, minEntries: number): Promise<{ completed: number; leftovers: string[] }> {
  const child = spawnSource(WRITER, [dir, String(SIZE)], { stdio: ["ignore", "pipe", "pipe"] }) as ChildProcessByStdio<null, Readable, Readable>;
  children.add(child);
  let completed = 0;
  let stderr = "";
  child.stdout.on("data", (b: Buffer) => (completed += b.toString().split("\n").filter(Boolean).length));
  child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<NodeJS.Signals | null>((res) => child.on("exit", (_code, signal) => res(signal)));
  const tmp = join(dir, "v1", "tmp");
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`writer exited early: ${stderr}`);
    if (completed >= minEntries && (await readdir(tmp).catch(() => [])).length > 0) break;
    await new Promise((r) => setImmediate(r));
  }
  child.kill("SIGKILL");
  expect(await exited).toBe("SIGKILL");
  children.delete(child);
  return { completed, leftovers: await readdir(tmp) };
}

describe("crash safety", () => {
  it("should open after kill -9 of a writer mid-write and serve only good entries", async () => {
    const dir = await mkdtemp(join(tmpdir(), "blob-cache-crash-"));
    dirs.push(dir);
    let killedMidWrite = 0;
    let expectedAtLeast = 0;
    for (let round = 0; round < 3; round++) {
      const { completed, leftovers } = await killMidWrite(dir, 2);
      if (leftovers.length > 0) killedMidWrite++;
      expectedAtLeast = completed;

      const cache = await openBlobCache({ dir, memoryBytes: 0 });
      try {
        expect(cache.stats().tmpCleaned).toBe(leftovers.length);
        expect(await readdir(join(dir, "v1", "tmp"))).toEqual([]);
        const listed = await cache.list();
        // every put that returned is there; at most one more (renamed, killed before it printed)
        expect(listed.length).toBeGreaterThanOrEqual(expectedAtLeast);
        expect(listed.length).toBeLessThanOrEqual(expectedAtLeast + 1);
        for (const e of listed) {
          const got = await cache.get(e);
          expect(got?.equals(content(e, SIZE)), `entry ${e.id}`).toBe(true);
        }
        expect(cache.stats()).toMatchObject({ corruptDropped: 0, misses: 0 });
      } finally {
        await cache.close();
      }
      // the next round's writer starts over at id 0 and rewrites the same keys: clear for a clean count
      await rm(join(dir, "v1", "data"), { recursive: true, force: true });
    }
    // the kill really landed while an entry was half written (a temp file was left behind)
    expect(killedMidWrite).toBeGreaterThanOrEqual(1);
  });
});
