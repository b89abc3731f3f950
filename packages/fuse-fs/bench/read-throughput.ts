/**
 * Benchmark (not a test): throughput of reads through a lazypull mount, with baselines measured in
 * the same run.
 *   - warm sequential read of a 256 MiB file: through the mount (blob-cache warm, fresh mount, so no
 *     kernel page cache), again (kernel page cache warm), and the same file from local disk
 *   - cold read of a 10 MiB file over loopback: requests, bytes, time
 * Reads run in child processes (`dd`): the serving process must never read its own mount.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { pipeline } from "node:stream/promises";
import { Worker } from "node:worker_threads";
import { openBlobCache } from "@lazypull/blob-cache";
import { RegistryClient } from "@lazypull/registry-client";
import { convertToEstargz } from "@lazypull/stargz-format";
import { startRegistry } from "@lazypull/testkit";
import tarStream from "tar-stream";
import { mountLazyFs } from "../src/index.js";
import { inflateVerified } from "@lazypull/stargz-format";
import { chunkedBlob } from "../test/helpers/fakes.js";
import { pushImage } from "../test/helpers/image.js";

const MiB = 1024 * 1024;

function ddRead(path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const c = spawn("dd", [`if=${path}`, "of=/dev/null", "bs=1M", "status=none"], { stdio: "ignore" });
    c.on("error", reject);
    c.on("close", (code) => (code === 0 ? resolve(Number(process.hrtime.bigint() - t0) / 1e9) : reject(new Error(`dd ${path} exited ${code}`))));
  });
}

const mbps = (bytes: number, s: number) => `${(bytes / MiB / s).toFixed(0)} MiB/s`;

/** async zlib + WebCrypto on the libuv pool (what fuse-fs uses) against a pool of worker threads */
async function compareInflate(): Promise<void> {
  const datas = Array.from({ length: 24 }, (_, i) => Buffer.concat([randomBytes(2 * MiB), Buffer.alloc(2 * MiB, `chunk ${i} `)]));
  const { blob, chunks } = chunkedBlob(datas);
  const members = chunks.map((c) => blob.subarray(c.compressedOffset, c.compressedEnd));
  const measure = async (name: string, run: () => Promise<unknown>) => {
    const lag = monitorEventLoopDelay({ resolution: 1 });
    lag.enable();
    const t0 = performance.now();
    await run();
    const ms = performance.now() - t0;
    lag.disable();
    console.log(`inflate+verify 24 x 4 MiB chunks, ${name}: ${mbps(24 * 4 * MiB, ms / 1000)}, event loop delay max ${(lag.max / 1e6).toFixed(1)} ms`);
  };
  await Promise.all(chunks.slice(0, 2).map((c, i) => inflateVerified(c, members[i]!, "warm-up")));
  await measure("async zlib + WebCrypto (libuv pool)", () => Promise.all(chunks.map((c, i) => inflateVerified(c, members[i]!, "bench"))));
  const workers = Array.from({ length: 2 }, () => new Worker(new URL("./inflate-worker.mjs", import.meta.url)));
  try {
    let next = 0;
    const pending = new Map<number, () => void>();
    for (const w of workers) w.on("message", (m: { id: number }) => pending.get(m.id)?.());
    await measure("2 worker threads (sync zlib + sha256)", () =>
      Promise.all(
        members.map(
          (m, i) =>
            new Promise<void>((resolve) => {
              const id = next++;
              pending.set(id, resolve);
              // a copy of just the member: posting a view would clone its whole backing buffer
              workers[i % workers.length]!.postMessage({ id, compressed: new Uint8Array(m) });
            }),
        ),
      ),
    );
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

async function main() {
  await compareInflate();
  const tmp = await mkdtemp(join(tmpdir(), "lazypull-fusefs-bench-"));
  const registry = await startRegistry();
  const client = new RegistryClient();
  const mounts: { close(): Promise<void> }[] = [];
  try {
    // a layer with a 256 MiB and a 10 MiB file (half random, half repetitive: compresses ~2:1)
    const big = Buffer.concat([randomBytes(128 * MiB), Buffer.alloc(128 * MiB, "lazypull ")]);
    const mid = Buffer.concat([randomBytes(5 * MiB), Buffer.alloc(5 * MiB, "estargz ")]);
    await writeFile(join(tmp, "big.bin"), big);
    const tar = join(tmp, "layer.tar");
    const pack = tarStream.pack();
    const written = pipeline(pack, createWriteStream(tar));
    pack.entry({ name: "big.bin", size: big.length, mode: 0o644 }, big);
    pack.entry({ name: "mid.bin", size: mid.length, mode: 0o644 }, mid);
    pack.finalize();
    await written;
    const esgz = join(tmp, "layer.esgz");
    const t0 = Date.now();
    const res = await convertToEstargz(createReadStream(tar), createWriteStream(esgz), { level: 1 });
    console.log(`converted ${(res.uncompressedSize / MiB).toFixed(0)} MiB tar to ${(res.blobSize / MiB).toFixed(0)} MiB eStargz in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const { ref, layers } = await pushImage(client, `${registry.host}/bench:1`, [{ path: esgz, ...res }]);
    const descriptor = layers[0]!;
    const cacheDir = join(tmp, "cache");

    const mount = async (name: string) => {
      const mnt = join(tmp, name);
      await mkdir(mnt);
      const cache = await openBlobCache({ dir: cacheDir });
      const fs = await mountLazyFs({ mountpoint: mnt, source: client, cache, prefetch: "none" });
      mounts.push({ close: async () => (await fs.close(), await cache.close()) });
      return { fs, dir: (await fs.addLayer({ ref, descriptor })).dir };
    };

    // cold 10 MiB over loopback
    const cold = await mount("cold");
    const lag = monitorEventLoopDelay({ resolution: 10 });
    lag.enable();
    const coldS = await ddRead(join(cold.dir, "mid.bin"));
    lag.disable();
    const p0 = cold.fs.progress()[0]!;
    console.log(
      `cold 10 MiB read over loopback: ${(coldS * 1000).toFixed(0)} ms, ${p0.requests} requests (footer+TOC included), ` +
        `${(p0.bytesFetched / MiB).toFixed(2)} MiB fetched; event loop delay max ${(lag.max / 1e6).toFixed(1)} ms, p99 ${(lag.percentile(99) / 1e6).toFixed(1)} ms`,
    );
    // cold 256 MiB, which fills the blob-cache
    const coldBig = await ddRead(join(cold.dir, "big.bin"));
    const p1 = cold.fs.progress()[0]!;
    console.log(`cold 256 MiB read: ${mbps(big.length, coldBig)} (${p1.requests - p0.requests} requests)`);

    // warm: a fresh mount (no kernel page cache) over the filled blob-cache
    const warm = await mount("warm");
    const warmS = await ddRead(join(warm.dir, "big.bin"));
    const pagecacheS = await ddRead(join(warm.dir, "big.bin"));
    const localS = await ddRead(join(tmp, "big.bin"));
    console.log(`warm 256 MiB via mount (blob-cache, fresh mount): ${mbps(big.length, warmS)}; requests ${warm.fs.progress()[0]!.requests - 0} (footer+TOC only)`);
    console.log(`warm 256 MiB via mount (kernel page cache):       ${mbps(big.length, pagecacheS)}`);
    console.log(`baseline 256 MiB from local disk (page cache):    ${mbps(big.length, localS)}`);
  } finally {
    for (const m of mounts.reverse()) await m.close().catch((e: unknown) => console.error(e));
    await client.close();
    await registry.stop();
    await rm(tmp, { recursive: true, force: true });
  }
}

await main();
