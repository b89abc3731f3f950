/**
 * node:zlib or fflate, measured at the three places this repo does gzip work:
 *  (a) the writer's members: 64 × 4 MiB of real binaries at level 9, 2 in flight — async zlib on the
 *      libuv pool (writer.ts `gzipAsync`) vs fflate `gzipSync` on the main thread vs fflate `gzip`
 *      (a worker per call);
 *  (b) fuse-fs's small members (inflate-verified.ts): 20,000 real files of 200 B–64 KiB, each a member
 *      (file, tar padding, next 512-byte header), inflated one at a time on the main thread, the chunk
 *      copied out and sha256'd — zlib `gunzipSync` vs fflate `gunzipSync` (+ the CRC-32 check zlib does
 *      and fflate does not);
 *  (c) the TOC (inflate.ts `inflateBounded`): a 2 MB gzip TOC member inflated whole — async zlib (the
 *      real `inflateBounded`), zlib `gunzipSync`, fflate `gunzipSync`, fflate `gunzip` (worker).
 * Wall time, and the main thread's worst stall: the max lateness of a 1 ms interval timer while the work
 * runs. Variants run round-robin, median of RUNS (5) runs.
 * `node --import tsx packages/stargz-format/bench/zlib-vs-fflate.ts` (from the repo root), or
 * `pnpm --filter @lazypull/stargz-format bench:gzip`. Env: RUNS, MEMBERS (64), SMALL (20000),
 * TOC_MB (2), WINDOW (2), ONLY (a|b|c).
 */
import { createHash } from "node:crypto";
import { lstatSync, readdirSync, readFileSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { join } from "node:path";
import { crc32, gunzipSync, gzip, gzipSync } from "node:zlib";
import * as fflate from "fflate";
import { inflateBounded } from "../src/inflate.js";

const RUNS = Number(process.env.RUNS ?? 5);
const MEMBERS = Number(process.env.MEMBERS ?? 64);
const SMALL = Number(process.env.SMALL ?? 20_000);
const TOC_BYTES = Number(process.env.TOC_MB ?? 2) * 1e6;
const WINDOW = Number(process.env.WINDOW ?? 2);
const ONLY = process.env.ONLY;
const LEVEL = 9;
const MiB = 1 << 20;

// ---------------------------------------------------------------- helpers

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

function quantile(xs: Float64Array, q: number): number {
  const s = Float64Array.from(xs).sort();
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Max lateness (ms) of a 1 ms interval timer between start and stop: the longest the main thread was held. */
function loopWatch(): { stop: () => number } {
  let last = performance.now();
  let max = 0;
  const t = setInterval(() => {
    const now = performance.now();
    max = Math.max(max, now - last - 1);
    last = now;
  }, 1);
  return {
    stop: () => {
      clearInterval(t);
      return Math.max(max, performance.now() - last - 1);
    },
  };
}

interface Sample {
  ms: number;
  stallMs: number;
  cpuMs: number;
  extra?: Record<string, number>;
}

async function measure(fn: () => Promise<Record<string, number> | void>): Promise<Sample> {
  const w = loopWatch();
  await new Promise((r) => setTimeout(r, 5));
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const extra = (await fn()) ?? undefined;
  const ms = performance.now() - t0;
  const c = process.cpuUsage(c0);
  await tick();
  return { ms, stallMs: w.stop(), cpuMs: (c.user + c.system) / 1000, extra };
}

/** `warm` runs each variant once untimed first (JIT: fflate is plain JS and starts slow). */
async function roundRobin(variants: Array<[string, () => Promise<Record<string, number> | void>]>, warm?: Array<() => Promise<unknown>>): Promise<Map<string, Sample[]>> {
  const out = new Map<string, Sample[]>(variants.map(([n]) => [n, []]));
  for (const [i, [, fn]] of variants.entries()) await (warm?.[i] ?? fn)();
  for (let run = 0; run < RUNS; run++) {
    for (const [name, fn] of variants) {
      (globalThis as { gc?: () => void }).gc?.();
      const s = await measure(fn);
      out.get(name)!.push(s);
      process.stderr.write(`  run ${run + 1}/${RUNS} ${name}: ${s.ms.toFixed(1)} ms, stall ${s.stallMs.toFixed(1)} ms\n`);
    }
  }
  return out;
}

function report(title: string, results: Map<string, Sample[]>, cols: Array<[string, (s: Sample[], name: string) => string]>, stall = true): void {
  console.log(`\n${title}`);
  const header = ["variant", "wall (median)", ...(stall ? ["main-thread stall (median of max)"] : []), ...cols.map(([c]) => c)];
  console.log(`| ${header.join(" | ")} |`);
  console.log(`| ${header.map(() => "---").join(" | ")} |`);
  for (const [name, ss] of results) {
    const wall = median(ss.map((s) => s.ms));
    const cells = [name, `${wall.toFixed(wall >= 100 ? 0 : 1)} ms`, ...(stall ? [`${median(ss.map((s) => s.stallMs)).toFixed(1)} ms`] : []), ...cols.map(([, f]) => f(ss, name))];
    console.log(`| ${cells.join(" | ")} |`);
  }
}

/** Regular files under `dir` (sorted, recursive to `depth`, no symlinks). */
function* walk(dir: string, depth: number): Generator<{ path: string; size: number; mode: number; mtime: number; uid: number; gid: number }> {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return;
  }
  for (const n of names) {
    const p = join(dir, n);
    let st;
    try {
      st = lstatSync(p);
    } catch {
      continue;
    }
    if (st.isDirectory()) {
      if (depth > 0) yield* walk(p, depth - 1);
    } else if (st.isFile()) yield { path: p, size: st.size, mode: st.mode & 0o7777, mtime: Math.floor(st.mtimeMs / 1000), uid: st.uid, gid: st.gid };
  }
}

function readable(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch {
    return undefined;
  }
}

/** A 512-byte stand-in for the next tar header that rides at the end of each member. */
function fakeHeader(name: string, size: number): Buffer {
  const h = Buffer.alloc(512);
  h.write(name.slice(0, 100), 0);
  h.write("0000644\0", 100);
  h.write(`${size.toString(8).padStart(11, "0")}\0`, 124);
  h.write("ustar\x0000", 257);
  return h;
}

// fflate's gunzipSync allocates the trailer's ISIZE up front (a lying member could ask for 4 GiB) and
// never checks the CRC: any real use needs these two guards, so the fflate variants pay for them.
function isize(gz: Uint8Array): number {
  return Buffer.from(gz.buffer, gz.byteOffset, gz.byteLength).readUInt32LE(gz.byteLength - 4);
}
function fflateGunzipChecked(gz: Buffer, max: number): Uint8Array {
  if (gz.length < 18 || isize(gz) > max) throw new Error("too large");
  const out = fflate.gunzipSync(gz);
  if (crc32(out) >>> 0 !== gz.readUInt32LE(gz.length - 8)) throw new Error("crc mismatch");
  return out;
}

console.log(
  `node ${process.version}, fflate ${JSON.parse(readFileSync(new URL(import.meta.resolve("fflate/package.json")), "utf8")).version as string}, ` +
    `${availableParallelism()} CPUs, UV_THREADPOOL_SIZE ${process.env.UV_THREADPOOL_SIZE ?? 4}, load ${loadavg()[0]!.toFixed(2)}, median of ${RUNS}`,
);

// ---------------------------------------------------------------- (a) writer members

if (!ONLY || ONLY === "a") {
  const want = MEMBERS * 4 * MiB;
  const corpus = Buffer.alloc(want);
  let filled = 0;
  for (const dir of ["/usr/bin", "/usr/lib/x86_64-linux-gnu"]) {
    for (const f of walk(dir, 1)) {
      if (filled >= want) break;
      const b = readable(f.path);
      if (!b) continue;
      filled += b.copy(corpus, filled);
    }
  }
  if (filled < want) throw new Error(`only ${filled} bytes of files found`);
  // each member its own ArrayBuffer (as the writer's Buffer.concat gives): posting a view of the big
  // corpus to a worker would structured-clone the whole 256 MiB buffer behind it
  const members = Array.from({ length: MEMBERS }, (_, i) => Buffer.from(corpus.subarray(i * 4 * MiB, (i + 1) * 4 * MiB)));
  console.log(`\n(a) ${MEMBERS} × 4 MiB members of /usr/bin + /usr/lib/x86_64-linux-gnu files, level ${LEVEL}, ${WINDOW} in flight`);

  const windowed = async (one: (b: Buffer) => Promise<Uint8Array>, list = members): Promise<Record<string, number>> => {
    const inflight: Array<Promise<Uint8Array>> = [];
    let size = 0;
    for (const m of list) {
      inflight.push(one(m));
      if (inflight.length >= WINDOW) size += (await inflight.shift()!).length;
    }
    for (const p of inflight) size += (await p).length;
    return { out: size };
  };
  // exactly the writer's gzipAsync
  const zlibAsync = (buf: Buffer): Promise<Uint8Array> => {
    const chunkSize = Math.min(1 << 20, Math.max(16 * 1024, buf.length + 1024));
    return new Promise((res, rej) => gzip(buf, { level: LEVEL, chunkSize }, (e, o) => (e ? rej(e) : res(o))));
  };
  // mtime 0: fflate writes the current time into the header otherwise (the writer must be deterministic)
  const fflateAsync = (buf: Buffer): Promise<Uint8Array> =>
    new Promise((res, rej) => fflate.gzip(buf, { level: LEVEL, mtime: 0 }, (e, o) => (e ? rej(e) : res(o))));

  // same bytes back from each (checked once, not timed)
  for (const out of [gzipSync(members[0]!, { level: LEVEL }), fflate.gzipSync(members[0]!, { level: LEVEL, mtime: 0 }), await fflateAsync(members[0]!)]) {
    if (!gunzipSync(out).equals(members[0]!)) throw new Error("round trip failed");
  }

  const r = await roundRobin([
    ["zlib async (libuv pool)", () => windowed(zlibAsync)],
    [
      "fflate gzipSync (main thread)",
      async () => {
        let size = 0;
        for (const m of members) {
          size += fflate.gzipSync(m, { level: LEVEL, mtime: 0 }).length;
          await tick(); // the writer would yield between members
        }
        return { out: size };
      },
    ],
    ["fflate gzip (worker per call)", () => windowed(fflateAsync)],
  ], [
    () => windowed(zlibAsync, members.slice(0, 2)),
    async () => members.slice(0, 2).map((m) => fflate.gzipSync(m, { level: LEVEL, mtime: 0 })),
    () => windowed(fflateAsync, members.slice(0, 2)),
  ]);
  report(`(a) compress ${(want / 1e6).toFixed(0)} MB`, r, [
    ["MB/s", (ss) => (want / 1e6 / (median(ss.map((s) => s.ms)) / 1000)).toFixed(1)],
    ["CPU (median)", (ss) => `${(median(ss.map((s) => s.cpuMs)) / 1000).toFixed(1)} s`],
    ["output", (ss) => `${(ss[0]!.extra!.out! / 1e6).toFixed(2)} MB`],
  ]);
}

// ---------------------------------------------------------------- (b) small members, inflate + sha256

if (!ONLY || ONLY === "b") {
  const candidates: Array<{ path: string; size: number }> = [];
  for (const dir of ["/usr/bin", "/usr/sbin", "/usr/lib", "/usr/share", "/usr/include", "/etc"]) {
    for (const f of walk(dir, 12)) if (f.size >= 200 && f.size <= 64 * 1024) candidates.push(f);
  }
  // evenly spaced over the sorted walk: the real size mix of a distro's small files
  const step = Math.max(1, candidates.length / SMALL);
  const members: Array<{ gz: Buffer; need: number; digest: string }> = [];
  for (let i = 0; members.length < SMALL && Math.floor(i) < candidates.length; i += step) {
    const f = candidates[Math.floor(i)]!;
    const data = readable(f.path);
    if (!data || data.length < 200) continue;
    const pad = Buffer.alloc((512 - (data.length % 512)) % 512);
    const raw = Buffer.concat([data, pad, fakeHeader(`${f.path}.next`, 1234)]);
    members.push({ gz: gzipSync(raw, { level: LEVEL }), need: data.length, digest: createHash("sha256").update(data).digest("hex") });
  }
  const sizes = Float64Array.from(members.map((m) => m.need));
  const gzSizes = Float64Array.from(members.map((m) => m.gz.length));
  const rawTotal = sizes.reduce((a, b) => a + b, 0);
  console.log(
    `\n(b) ${members.length} members of real files (${candidates.length} of 200 B–64 KiB under /usr and /etc, evenly sampled): ` +
      `file size median ${(quantile(sizes, 0.5) / 1024).toFixed(1)} KiB, p90 ${(quantile(sizes, 0.9) / 1024).toFixed(1)} KiB, ` +
      `member median ${(quantile(gzSizes, 0.5) / 1024).toFixed(1)} KiB; ${(rawTotal / 1e6).toFixed(1)} MB of file data`,
  );

  const per = new Map<string, Float64Array[]>();
  const loop = (name: string, inflate: (gz: Buffer, need: number) => Uint8Array) => async (): Promise<Record<string, number>> => {
    const times = new Float64Array(members.length);
    for (let i = 0; i < members.length; i++) {
      const m = members[i]!;
      const t0 = performance.now();
      const out = inflate(m.gz, m.need);
      // as inflate-verified: the chunk copied out of the member, then sha256 of it
      const data = Buffer.from(out.buffer, out.byteOffset, m.need);
      const copy = Buffer.from(data);
      const hex = createHash("sha256").update(copy).digest("hex");
      times[i] = performance.now() - t0;
      if (hex !== m.digest) throw new Error(`${name}: digest mismatch`);
    }
    (per.get(name) ?? per.set(name, []).get(name)!).push(times);
    return {};
  };
  const names = ["zlib gunzipSync", "fflate gunzipSync (+ISIZE cap, +CRC-32)", "fflate gunzipSync (no checks)"];
  const r = await roundRobin([
    [names[0]!, loop(names[0]!, (gz, need) => gunzipSync(gz, { maxOutputLength: need + MiB }))],
    [names[1]!, loop(names[1]!, (gz, need) => fflateGunzipChecked(gz, need + MiB))],
    [names[2]!, loop(names[2]!, (gz) => fflate.gunzipSync(gz))],
  ]);
  const perQ = (name: string, q: number): number => median(per.get(name)!.slice(-RUNS).map((t) => quantile(t, q))); // not the warm-up
  // mean per member by file size: does fflate's lack of per-call setup win on the tiniest ones?
  const buckets: Array<[string, number, number]> = [
    ["< 1 KiB", 0, 1024],
    ["1–8 KiB", 1024, 8192],
    ["8–64 KiB", 8192, Infinity],
  ];
  const bucketMean = (name: string, lo: number, hi: number): number =>
    median(
      per
        .get(name)!
        .slice(-RUNS)
        .map((t) => {
          let sum = 0;
          let n = 0;
          for (let i = 0; i < members.length; i++) {
            if (members[i]!.need >= lo && members[i]!.need < hi) {
              sum += t[i]!;
              n++;
            }
          }
          return sum / n;
        }),
    );
  report(`(b) inflate + sha256 of ${members.length} small members, one at a time on the main thread`, r, [
    ...buckets.map(([label, lo, hi]): [string, (s: Sample[], name: string) => string] => [
      `mean ${label} (${members.filter((m) => m.need >= lo && m.need < hi).length})`,
      (_, name) => `${(bucketMean(name, lo, hi) * 1000).toFixed(0)} µs`,
    ]),
    ["per member mean", (ss) => `${((median(ss.map((s) => s.ms)) * 1000) / members.length).toFixed(1)} µs`],
    // the loop is synchronous, so the main-thread stall per FUSE read is one member's time: max column
    ["p50 / p99 / max per member", (_, name) => `${(perQ(name, 0.5) * 1000).toFixed(0)} / ${(perQ(name, 0.99) * 1000).toFixed(0)} / ${(perQ(name, 1) * 1000).toFixed(0)} µs`],
    ["MB/s (file data)", (ss) => (rawTotal / 1e6 / (median(ss.map((s) => s.ms)) / 1000)).toFixed(0)],
  ], false);
}

// ---------------------------------------------------------------- (c) TOC inflate

if (!ONLY || ONLY === "c") {
  const files = [...walk("/usr", 12)];
  const build = (n: number): Buffer => {
    const entries: string[] = [];
    for (let i = 0; i < n; i++) {
      const f = files[i % files.length]!;
      const name = (i >= files.length ? `copy${Math.floor(i / files.length)}/` : "") + f.path.slice(1);
      const digest = `sha256:${createHash("sha256").update(name).digest("hex")}`;
      // the writer's shape: tab-indented, one object per file, digest == chunkDigest for one chunk
      entries.push(
        JSON.stringify(
          {
            name,
            type: "reg",
            size: f.size,
            modtime: new Date(f.mtime * 1000).toISOString().replace(".000Z", "Z"),
            mode: f.mode,
            uid: f.uid,
            gid: f.gid,
            offset: 1000 + i * 2311,
            digest,
            chunkDigest: digest,
          },
          null,
          "\t",
        ).replace(/\n/g, "\n\t\t"),
      );
    }
    const json = Buffer.from(`{\n\t"version": 1,\n\t"entries": [\n\t\t${entries.join(",\n\t\t")}\n\t]\n}`);
    const tar = Buffer.concat([fakeHeader("stargz.index.json", json.length), json, Buffer.alloc((512 - (json.length % 512)) % 512)]);
    return tar;
  };
  let n = 40_000;
  let tar = build(n);
  let gz = gzipSync(tar, { level: LEVEL });
  n = Math.round((n * TOC_BYTES) / gz.length);
  tar = build(n);
  gz = gzipSync(tar, { level: LEVEL });
  console.log(`\n(c) TOC member: ${n} entries from /usr, ${(tar.length / 1e6).toFixed(1)} MB JSON (in its tar) → ${(gz.length / 1e6).toFixed(2)} MB gzip`);

  const MAX = 64 * MiB;
  const check = (out: Uint8Array): Record<string, number> => {
    if (out.length !== tar.length || !Buffer.from(out.buffer, out.byteOffset, out.byteLength).equals(tar)) throw new Error("TOC differs");
    return {};
  };
  const r = await roundRobin([
    [
      "zlib async: inflateBounded (libuv pool)",
      async () =>
        check(
          await inflateBounded(
            gz,
            MAX,
            () => new Error("too large"),
            (e) => e,
          ),
        ),
    ],
    [
      "zlib gunzipSync (main thread)",
      async () => {
        await tick();
        const out = check(gunzipSync(gz, { maxOutputLength: MAX, chunkSize: Math.min(isize(gz) + 1, MAX + 1) }));
        await tick();
        return out;
      },
    ],
    [
      "fflate gunzipSync (+cap, +CRC-32)",
      async () => {
        await tick();
        const out = check(fflateGunzipChecked(gz, MAX));
        await tick();
        return out;
      },
    ],
    ["fflate gunzip (worker)", async () => check(await new Promise<Uint8Array>((res, rej) => fflate.gunzip(gz, (e, o) => (e ? rej(e) : res(o)))))],
  ]);
  report(`(c) inflate one ${(gz.length / 1e6).toFixed(1)} MB TOC member whole`, r, [["MB/s (inflated)", (ss) => (tar.length / 1e6 / (median(ss.map((s) => s.ms)) / 1000)).toFixed(0)]]);
}
