// Retained heap of the in-memory entry index, and the time of a directory rescan.
// Run: pnpm --filter @lazypull/blob-cache bench:index [N] [SCAN_N]   (not part of the tests; needs --expose-gc)
//
// 1. N synthetic entry files (empty: a rescan only lists and stats them) are indexed by the real open path
//    (`openBlobCache` → rescan); retained memory = heapUsed + arrayBuffers after gc, minus the same before, over N.
//    Same run baseline: the representation before the compact index (Map<rel, object>) filled from the same
//    directory listing the way the old rescan did.
//    Then one real put on the filled cache (counted once, read back, no entry lost).
// 2. The index module alone, N entries added directly (no directory listing involved); and what a rescan
//    holds until it applies its findings, old (Map of objects) and now (ScannedEntries), from the same names.
// 3. Scan time of a SCAN_N-entry directory: opening a cache (empty index) and rescanning a populated one,
//    interleaved with the old representation's scan (same listing and stats) as the same-run baseline.
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BlobCache, openBlobCache } from "../src/index.js";
import { EntryIndex, ScannedEntries } from "../src/entry-index.js";
import { blobOfEntryName, entryRelPath } from "../src/layout.js";

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with node --expose-gc (pnpm --filter @lazypull/blob-cache bench:index)");
const N = Number(process.argv[2] ?? 200_000);
const SCAN_N = Number(process.argv[3] ?? 20_000);
const BLOBS = Array.from({ length: 40 }, (_, i) => `sha256:${i.toString(16).padStart(2, "0").repeat(32)}`);

function heap(): number {
  for (let i = 0; i < 4; i++) gc!();
  // typed arrays keep their contents outside the JS heap: count those bytes too
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** n empty entry files named as real keys would be (40 layers, chunk ids), written synchronously: setup only. */
function fill(dataDir: string, n: number): void {
  const made = new Set<string>();
  for (let i = 0; i < n; i++) {
    const rel = entryRelPath({ blob: BLOBS[i % BLOBS.length]!, id: `chunk:${i * 4096}` });
    const fan = rel.slice(0, 2);
    if (!made.has(fan)) {
      mkdirSync(join(dataDir, fan), { recursive: true });
      made.add(fan);
    }
    writeFileSync(join(dataDir, rel), "");
  }
}

/** The index as it was before (one object per entry keyed by the ~115-char path), filled like the old rescan. */
async function legacyIndex(dataDir: string) {
  interface DiskEntry {
    rel: string;
    blob: string;
    size: number;
    lastUse: number;
    touched: number;
    addedAt: number;
  }
  const index = new Map<string, DiskEntry>();
  for (const fan of readdirSync(dataDir)) {
    const names = await readdir(join(dataDir, fan));
    await Promise.all(
      names.map(async (name) => {
        const blob = blobOfEntryName(name)!;
        const st = await stat(join(dataDir, fan, name));
        const rel = `${fan}/${name}`;
        index.set(rel, { rel, blob, size: st.size, lastUse: st.mtimeMs, touched: st.mtimeMs, addedAt: 0 });
      }),
    );
  }
  return index;
}

/** Retained heap per entry of what `build` returns, measured while it is still referenced. */
async function perEntry(build: () => Promise<{ entries: number; keep: unknown }>): Promise<number> {
  const before = heap();
  const built = await build();
  const after = heap();
  if (built.entries !== N) throw new Error(`indexed ${built.entries} entries, wanted ${N}`);
  if (built.keep instanceof BlobCache) await built.keep.close();
  return (after - before) / built.entries;
}

/** One real put on the filled cache: counted once, found, and every other entry kept. */
async function checkPut(dir: string): Promise<void> {
  const cache = await openBlobCache({ dir, memoryBytes: 0 });
  try {
    const key = { blob: BLOBS[0]!, id: "bench:put" };
    await cache.put(key, Buffer.from("checked"));
    const put = { entries: cache.stats().entries, got: (await cache.get(key))?.toString() };
    if (put.entries !== N + 1 || put.got !== "checked") throw new Error(`put check failed: ${JSON.stringify(put)}`);
  } finally {
    await cache.close();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = async (fn: () => Promise<unknown>) => {
  const t = performance.now();
  await fn();
  return performance.now() - t;
};

const root = await mkdtemp(join(tmpdir(), "blob-cache-index-bench-"));
try {
  const big = join(root, "big");
  const t0 = performance.now();
  fill(join(big, "v1", "data"), N);
  console.log(`node ${process.version}; ${N} entry files written in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);

  const legacyBytes = await perEntry(async () => {
    const index = await legacyIndex(join(big, "v1", "data"));
    return { entries: index.size, keep: index };
  });
  const cacheBytes = await perEntry(async () => {
    const cache = await openBlobCache({ dir: big, memoryBytes: 0 });
    return { entries: cache.stats().entries, keep: cache };
  });
  // what a rescan holds until it applies its findings: before, a Map<rel, { blob, size, mtime }>
  const names = readdirSync(join(big, "v1", "data")).flatMap((fan) => readdirSync(join(big, "v1", "data", fan)).map((n) => [fan, n] as const));
  const oldScanBytes = await perEntry(async () => {
    const found = new Map<string, { blob: string; size: number; mtime: number }>();
    for (const [fan, name] of names) found.set(`${fan}/${name}`, { blob: blobOfEntryName(name)!, size: 4096, mtime: Date.now() });
    return { entries: found.size, keep: found };
  });
  const scanBytes = await perEntry(async () => {
    const found = new ScannedEntries();
    for (const [fan, name] of names) found.add(fan, name, found.blobOf(fan, name), 4096, Date.now());
    return { entries: found.count, keep: found };
  });

  await checkPut(big);
  const moduleBytes = await perEntry(async () => {
    const index = new EntryIndex();
    for (let i = 0; i < N; i++) {
      const rel = entryRelPath({ blob: BLOBS[i % BLOBS.length]!, id: `chunk:${i * 4096}` });
      const t = Date.now() + i / 1000;
      index.set(rel, 4096 + 200, t, t, t);
    }
    return { entries: index.count, keep: index };
  });

  console.log(`retained memory per entry (heapUsed + arrayBuffers, after gc), ${N} entries:`);
  console.log(`  old representation (Map<rel, object>, same listing): ${legacyBytes.toFixed(1)} B`);
  console.log(`  BlobCache index after open (rescan):                 ${cacheBytes.toFixed(1)} B`);
  console.log(`  EntryIndex alone, entries added by path:             ${moduleBytes.toFixed(1)} B`);
  console.log(`what a rescan holds until it applies its findings (the listing's names not counted):`);
  console.log(`  old Map<rel, { blob, size, mtime }>:                 ${oldScanBytes.toFixed(1)} B`);
  console.log(`  ScannedEntries:                                      ${scanBytes.toFixed(1)} B`);

  // rescan time
  const small = join(root, "small");
  fill(join(small, "v1", "data"), SCAN_N);
  // interleaved, so a busy machine slows both alike
  const legacyScan: number[] = [];
  const open: number[] = [];
  const again: number[] = [];
  for (let i = 0; i < 9; i++) {
    legacyScan.push(await ms(() => legacyIndex(join(small, "v1", "data"))));
    let c: BlobCache | undefined;
    open.push(await ms(async () => (c = await openBlobCache({ dir: small, memoryBytes: 0 }))));
    again.push(await ms(() => c!.rescan()));
    await c!.close();
  }
  const row = (xs: number[]) => `${median(xs).toFixed(0)} ms (${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)})`;
  console.log(`\nscan of ${SCAN_N} entries, median of 9 (min–max):`);
  console.log(`  old representation (listing + stat into Map<rel, object>): ${row(legacyScan)}`);
  console.log(`  openBlobCache (rescan into an empty index):               ${row(open)}`);
  console.log(`  rescan of the open cache (index full):                    ${row(again)}`);
} finally {
  await rm(root, { recursive: true, force: true });
}
