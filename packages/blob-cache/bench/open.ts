// How long `openBlobCache` keeps its caller waiting on a populated cache, and how long until the first hit.
// Run: pnpm --filter @lazypull/blob-cache bench:open [N] [RUNS]   (not part of the tests)
//
// N entry files (1 KiB payloads, written through `put` so they are real entries) in a fresh directory; then
// RUNS times: open the cache (a fresh process-level object each time; the directory's inodes are warm, as on
// a host that ran a container a moment ago), time the `await openBlobCache`, then a `get` of one entry, then
// `idle()` (the index scan finished). Medians and ranges in ms.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openBlobCache } from "../src/index.js";

const N = Number(process.argv[2] ?? 8_300);
const RUNS = Number(process.argv[3] ?? 9);
const BLOBS = Array.from({ length: 20 }, (_, i) => `sha256:${i.toString(16).padStart(2, "0").repeat(32)}`);
const keyOf = (i: number) => ({ blob: BLOBS[i % BLOBS.length]!, id: `chunk:${i * 4096}` });

const dir = await mkdtemp(join(tmpdir(), "lazypull-bench-open-"));
try {
  const fill = await openBlobCache({ dir, memoryBytes: 0, maxBytes: 2 ** 40 });
  const payload = Buffer.alloc(1024, 7);
  for (let i = 0; i < N; i += 64) await Promise.all(Array.from({ length: Math.min(64, N - i) }, (_, j) => fill.put(keyOf(i + j), payload)));
  await fill.close();

  const open: number[] = [];
  const firstHit: number[] = [];
  const scanned: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const t0 = performance.now();
    const cache = await openBlobCache({ dir, memoryBytes: 0, maxBytes: 2 ** 40 });
    const t1 = performance.now();
    const hit = await cache.get(keyOf(r * 7));
    const t2 = performance.now();
    if (!hit) throw new Error("entry missing");
    await cache.idle();
    const t3 = performance.now();
    if (cache.stats().entries !== N) throw new Error(`index holds ${cache.stats().entries} entries, expected ${N}`);
    await cache.close();
    open.push(t1 - t0);
    firstHit.push(t2 - t0);
    scanned.push(t3 - t0);
  }
  const fmt = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return `median ${s[s.length >> 1]!.toFixed(1)} ms (${s[0]!.toFixed(1)}–${s[s.length - 1]!.toFixed(1)})`;
  };
  console.log(`${N} entries, ${RUNS} runs`);
  console.log(`await openBlobCache:          ${fmt(open)}`);
  console.log(`open + first get (hit):       ${fmt(firstHit)}`);
  console.log(`open + index scan finished:   ${fmt(scanned)}`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
