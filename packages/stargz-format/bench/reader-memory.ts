/**
 * What an opened reader costs for a big TOC: heap and RSS it keeps after GC, the RSS peak while opening,
 * and the open time. Builds a generated N-file eStargz blob once (default 20,000 files in 200 dirs, cached
 * in the temp dir), then measures each run in a fresh process, so one run's garbage and peak do
 * not leak into the next. Baseline in the same run: `JSON.parse` of the same TOC alone (what any reader
 * that keeps the parsed TOC pays before building anything of its own).
 * `node --expose-gc --conditions=@lazypull/source --import tsx bench/reader-memory.ts [files] [runs]`
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { gunzipSync } from "node:zlib";
import { convertToEstargz, emptyHeader, encodeHeader, END_OF_ARCHIVE, openStargz, padding, parseFooter, type StargzReader } from "../src/index.js";

const FILES = Number(process.argv[2] ?? 20_000);
const RUNS = Number(process.argv[3] ?? 3);
const MB = 2 ** 20;

async function buildBlob(path: string): Promise<void> {
  const parts: Buffer[] = [];
  for (let d = 0; d < FILES / 100; d++) {
    const dir = `usr/share/pkg-${d}/`;
    // like a distro layer: files of a package share an mtime, packages differ; now and then a file
    // bigger than a chunk (4 MiB, several TOC entries)
    const mtime = 1_700_000_000 + d * 3600;
    parts.push(encodeHeader({ ...emptyHeader(dir, "dir"), mode: 0o755, mtime }));
    for (let f = 0; f < 100; f++) {
      const line = `package ${d} file ${f}\n`;
      const data = Buffer.from(line.repeat(f === 0 && d % 20 === 0 ? Math.ceil((9 << 20) / line.length) : 1 + ((d * 7 + f) % 40)));
      parts.push(encodeHeader({ ...emptyHeader(`${dir}file-${f}.txt`, "reg"), mode: 0o644, mtime, size: data.length }), data, Buffer.alloc(padding(data.length)));
    }
  }
  parts.push(END_OF_ARCHIVE);
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on("data", (c: Buffer) => chunks.push(c));
  await convertToEstargz(
    (async function* () {
      yield Buffer.concat(parts);
    })(),
    out,
  );
  writeFileSync(`${path}.tmp`, Buffer.concat(chunks));
  renameSync(`${path}.tmp`, path);
}

const status = (key: string): number => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(readFileSync("/proc/self/status", "utf8"))![1]) * 1024;

/** One measurement in this (fresh) process: what = "reader" opens the blob, "parse" only parses its TOC. */
async function measure(path: string, what: "reader" | "parse"): Promise<Record<string, number>> {
  const gc = globalThis.gc;
  if (!gc) throw new Error("run with node --expose-gc");
  const blob = readFileSync(path);
  const range = { size: blob.length, read: async (o: number, l: number) => blob.subarray(o, o + l) };
  const open = async (): Promise<unknown> => {
    if (what === "reader") return openStargz(range);
    const footer = parseFooter(blob.subarray(blob.length - 51))!;
    const tar = gunzipSync(blob.subarray(footer.tocOffset, blob.length - footer.footerSize));
    const size = parseInt(tar.toString("latin1", 124, 136).replace(/\0.*$/, "").trim(), 8);
    return JSON.parse(tar.toString("utf8", 512, 512 + size));
  };
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const before = process.memoryUsage();
  writeFileSync("/proc/self/clear_refs", "5"); // reset VmHWM to the current RSS
  const t0 = performance.now();
  let kept: unknown = await open();
  const ms = performance.now() - t0;
  const peak = status("VmHWM");
  // Buffers dropped during the open are only freed by a GC after the current task: settle first
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const after = process.memoryUsage();
  const ops = what === "reader" ? queries(kept as StargzReader) : {};
  const result = {
    heap: (after.heapUsed - before.heapUsed) / MB,
    external: (after.external - before.external) / MB,
    rss: (after.rss - before.rss) / MB,
    peak: (peak - before.rss) / MB,
    ms,
  };
  // warm open times (JIT settled): the first open above includes compiling the reader
  const warm: number[] = [];
  kept = undefined;
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    await open();
    warm.push(performance.now() - t);
  }
  warm.sort((a, b) => a - b);
  return { ...result, warmMs: warm[2]!, ...ops };
}

/** ns per call of what fuse-fs asks per FUSE op, over every path of the layer (best of 5 rounds). */
function queries(r: StargzReader): Record<string, number> {
  const paths = [...r.walk()].map((n) => n.path);
  const files = paths.filter((p) => r.lookup(p)!.type === "reg");
  const dirs = paths.filter((p) => r.lookup(p)!.type === "dir");
  const time = (list: string[], op: (p: string) => unknown): number => {
    let best = Infinity;
    for (let round = 0; round < 5; round++) {
      const t = performance.now();
      for (const p of list) op(p);
      best = Math.min(best, performance.now() - t);
    }
    return (best * 1e6) / list.length;
  };
  return {
    // fuse-fs passes normalised paths; a leading "/" takes normalizeName's slow path
    lookupNs: time(paths, (p) => r.lookup(p)),
    lookupSlashNs: time(paths, (p) => r.lookup(`/${p}`)),
    readdirNs: time(dirs, (p) => r.readdir(p)),
    chunksForNs: time(files, (p) => r.chunksFor(p, 0, 4096)),
  };
}

if (process.argv[4] === "--child") {
  process.stdout.write(JSON.stringify(await measure(process.argv[5]!, process.argv[6] as "reader" | "parse")));
} else {
  const dir = join(tmpdir(), "lazypull-bench");
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `reader-memory-v2-${FILES}.esgz`);
  if (!existsSync(path)) await buildBlob(path);
  const r = await openStargz({ size: readFileSync(path).length, read: async (o, l) => readFileSync(path).subarray(o, o + l) });
  console.log(`blob ${path}: ${(readFileSync(path).length / MB).toFixed(1)} MB, ${FILES} files, TOC member ${((readFileSync(path).length - r.tocOffset) / 1024).toFixed(0)} KiB`);
  const fmt = (n: number) => n.toFixed(1).padStart(6);
  for (const what of ["parse", "reader"] as const) {
    const runs = Array.from({ length: RUNS }, () =>
      JSON.parse(
        execFileSync(process.execPath, [...process.execArgv, process.argv[1]!, String(FILES), String(RUNS), "--child", path, what], { encoding: "utf8" }),
      ) as Record<string, number>,
    );
    const med = (k: string) => runs.map((x) => x[k]!).sort((a, b) => a - b)[runs.length >> 1]!;
    console.log(
      `${what === "parse" ? "JSON.parse(TOC) only (baseline)" : "openStargz reader"}: retained heap ${fmt(med("heap"))} MB + external ${fmt(med("external"))} MB, retained RSS ${fmt(med("rss"))} MB, ` +
        `peak RSS while opening +${fmt(med("peak"))} MB, first open ${fmt(med("ms"))} ms, warm open ${fmt(med("warmMs"))} ms (median of ${RUNS} processes)`,
    );
    if (what === "reader") {
      console.log(`  per call: lookup ${fmt(med("lookupNs"))} ns ("/path": ${fmt(med("lookupSlashNs"))} ns), readdir ${fmt(med("readdirNs"))} ns, chunksFor ${fmt(med("chunksForNs"))} ns`);
    }
  }
}
