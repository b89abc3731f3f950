// Hit latency and throughput of the blob cache next to plain file reads of the same bytes, same run.
// Run: pnpm --filter @lazypull/blob-cache bench   (not part of the tests)
import { randomBytes } from "node:crypto";
import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { openBlobCache } from "../src/index.js";

const MiB = 2 ** 20;
const ENTRY = 4 * MiB;
const dir = await mkdtemp(join(tmpdir(), "blob-cache-bench-"));
const key = { blob: `sha256:${"f0".repeat(32)}`, id: "chunk:0" };
const payload = randomBytes(ENTRY);

interface Row {
  what: string;
  size: number;
  p50: number;
  p99: number;
  mbps: number;
  mbps8: number;
  loopMaxMs: number;
}

async function measure(what: string, size: number, iterations: number, op: (i: number) => Promise<Buffer | undefined>): Promise<Row> {
  for (let i = 0; i < Math.min(50, iterations); i++) await op(i); // warm up (page cache, JIT)
  const lat: number[] = [];
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) {
    const s = process.hrtime.bigint();
    const b = await op(i);
    lat.push(Number(process.hrtime.bigint() - s) / 1e6);
    if (!b || b.length !== size) throw new Error(`${what}: got ${b?.length} bytes, wanted ${size}`);
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  loop.disable();
  // 8 reads in flight, as FUSE issues them
  const t1 = process.hrtime.bigint();
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < iterations) await op(next++);
    }),
  );
  const seconds8 = Number(process.hrtime.bigint() - t1) / 1e9;
  lat.sort((a, b) => a - b);
  const pct = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]!;
  return {
    what,
    size,
    p50: pct(0.5),
    p99: pct(0.99),
    mbps: (size * iterations) / seconds / 1e6,
    mbps8: (size * iterations) / seconds8 / 1e6,
    loopMaxMs: loop.max / 1e6,
  };
}

try {
  const plainPath = join(dir, "plain.bin");
  await writeFile(plainPath, payload);
  const disk = await openBlobCache({ dir: join(dir, "cache"), memoryBytes: 0 });
  const mem = await openBlobCache({ dir: join(dir, "cache"), memoryBytes: 64 * MiB });
  await disk.put(key, payload);
  await mem.get(key); // loads the memory tier
  const held = await open(plainPath, "r");

  const plainRead = async (offset: number, length: number) => {
    const fh = await open(plainPath, "r");
    try {
      const b = Buffer.allocUnsafe(length);
      await fh.read(b, 0, length, offset);
      return b;
    } finally {
      await fh.close();
    }
  };
  const heldRead = async (offset: number, length: number) => {
    const b = Buffer.allocUnsafe(length);
    await held.read(b, 0, length, offset);
    return b;
  };

  const rows: Row[] = [];
  for (const [size, n] of [
    [4096, 4000],
    [128 * 1024, 2000],
    [ENTRY, 200],
  ] as const) {
    const slots = ENTRY / size;
    const off = (i: number) => ((i * 7919) % slots) * size; // spread over the entry, same sequence for all
    rows.push(await measure("file: open+pread+close", size, n, (i) => plainRead(off(i), size)));
    rows.push(await measure("file: pread on open fd", size, n, (i) => heldRead(off(i), size)));
    if (size === ENTRY) {
      rows.push(await measure("cache get (disk, CRC)", size, n, () => disk.get(key)));
      rows.push(await measure("cache get (memory tier)", size, n, () => mem.get(key)));
    } else {
      rows.push(await measure("cache read (disk, CRC)", size, n, (i) => disk.read(key, off(i), size)));
      rows.push(await measure("cache read (memory tier)", size, n, (i) => mem.read(key, off(i), size)));
    }
  }
  await held.close();
  await disk.close();
  await mem.close();

  const f = (x: number, d = 3) => x.toFixed(d);
  console.log(`node ${process.version}, entry ${ENTRY / MiB} MiB, page cache warm\n`);
  console.log("| read | size | p50 ms | p99 ms | MB/s (1 in flight) | MB/s (8 in flight) | max event-loop delay ms |");
  console.log("| --- | --- | --- | --- | --- | --- | --- |");
  for (const r of rows) {
    const size = r.size >= MiB ? `${r.size / MiB} MiB` : `${r.size / 1024} KiB`;
    console.log(`| ${r.what} | ${size} | ${f(r.p50)} | ${f(r.p99)} | ${f(r.mbps, 0)} | ${f(r.mbps8, 0)} | ${f(r.loopMaxMs, 1)} |`);
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
