/**
 * Which way of using both cores compresses gzip members faster: async zlib on the libuv pool (what the
 * writer uses) or a worker_threads pool running gzipSync? Same members (the Debian rootfs tar cut at
 * file boundaries the way the writer cuts it), same level, same in-flight window.
 * `node --conditions=@lazypull/source --import tsx bench/compress-strategies.ts`
 */
import { createReadStream } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { Worker } from "node:worker_threads";
import { gzip } from "node:zlib";
import { debianRootfsTar } from "@lazypull/testkit";
import { StreamByteSource, readTar } from "../src/index.js";

const LEVEL = Number(process.env.LEVEL ?? 9);
const LIMIT = Number(process.env.LIMIT_MB ?? 80) * 1e6;
const WINDOW = availableParallelism() * 2;

async function members(): Promise<Buffer[]> {
  const out: Buffer[] = [];
  let total = 0;
  for await (const e of readTar(new StreamByteSource(createReadStream(await debianRootfsTar())[Symbol.asyncIterator]()))) {
    for (let left = e.header.size; left > 0; ) {
      const b = await e.read(Math.min(left, 4 << 20));
      out.push(Buffer.from(b));
      left -= b.length;
      total += b.length;
    }
    if (total > LIMIT) break;
  }
  return out;
}

async function windowed(items: Buffer[], one: (b: Buffer) => Promise<Buffer>): Promise<number> {
  const inflight: Array<Promise<Buffer>> = [];
  let size = 0;
  for (const b of items) {
    inflight.push(one(b));
    if (inflight.length >= WINDOW) size += (await inflight.shift()!).length;
  }
  for (const p of inflight) size += (await p).length;
  return size;
}

const workerSource = `
const { parentPort } = require("node:worker_threads");
const { gzipSync } = require("node:zlib");
parentPort.on("message", ({ id, buf, level }) => {
  const out = gzipSync(buf, { level });
  parentPort.postMessage({ id, out }, [out.buffer]);
});`;

async function time(name: string, fn: () => Promise<number>, bytes: number): Promise<void> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const size = await fn();
  const ms = performance.now() - t0;
  const c = process.cpuUsage(c0);
  console.log(`${name.padEnd(28)} ${(bytes / 1e6 / (ms / 1000)).toFixed(1).padStart(7)} MB/s  wall ${(ms / 1000).toFixed(2)} s  CPU ${((c.user + c.system) / 1e6).toFixed(2)} s  out ${(size / 1e6).toFixed(2)} MB`);
}

const items = await members();
const bytes = items.reduce((n, b) => n + b.length, 0);
console.log(`${items.length} members, ${(bytes / 1e6).toFixed(1)} MB, level ${LEVEL}, window ${WINDOW}, load ${loadavg()[0]!.toFixed(2)}`);

await time("async zlib (libuv pool)", () => windowed(items, (b) => new Promise((res, rej) => gzip(b, { level: LEVEL }, (e, o) => (e ? rej(e) : res(o))))), bytes);

const workers = Array.from({ length: availableParallelism() }, () => new Worker(workerSource, { eval: true }));
const pending = new Map<number, (b: Buffer) => void>();
for (const w of workers) w.on("message", ({ id, out }: { id: number; out: Uint8Array }) => pending.get(id)!(Buffer.from(out.buffer, out.byteOffset, out.byteLength)));
let next = 0;
await time(
  `worker_threads x${workers.length} gzipSync`,
  () =>
    windowed(items, (b) => {
      const id = next++;
      const copy = Buffer.alloc(b.length); // own ArrayBuffer (never the pool): transferred to the worker
      b.copy(copy);
      return new Promise((res) => {
        pending.set(id, res);
        workers[id % workers.length]!.postMessage({ id, buf: copy, level: LEVEL }, [copy.buffer]);
      });
    }),
  bytes,
);
await Promise.all(workers.map((w) => w.terminate()));
