/**
 * Convert the Debian rootfs tar to eStargz and compare with `gzip -9` of the same tar in the same run:
 * input MB/s, peak RSS, compressed size. Not a test: `pnpm --filter @lazypull/stargz-format bench`.
 * Each side runs in its own process so peak RSS is per side (`/usr/bin/time -v` style via getrusage).
 */
import { spawn } from "node:child_process";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { debianRootfsTar } from "@lazypull/testkit";
import { convertToEstargz } from "../src/index.js";

const MB = 1e6;

async function child(): Promise<void> {
  const [, , , input, output, level] = process.argv;
  const t0 = performance.now();
  const elu0 = performance.eventLoopUtilization();
  const r = await convertToEstargz(createReadStream(input!, { highWaterMark: 1 << 20 }), createWriteStream(output!), {
    level: level ? Number(level) : undefined,
  });
  const ms = performance.now() - t0;
  const u = process.resourceUsage();
  const mainMs = performance.eventLoopUtilization(elu0).active;
  process.stdout.write(JSON.stringify({ ms, mainMs, cpuMs: (u.userCPUTime + u.systemCPUTime) / 1000, maxRssKb: u.maxRSS, size: r.blobSize }));
}

interface Run {
  ms: number;
  /** time the main thread was busy (tar parsing, hashing, bookkeeping); the rest of the CPU is zlib on the pool */
  mainMs?: number;
  cpuMs: number;
  maxRssKb?: number;
  size: number;
}

function runChild(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), "--child", ...args], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    p.on("exit", (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`converter exited ${code}`))));
  });
}

function gzip9(input: string, output: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    // bash's `time` gives gzip's own CPU time (user + sys) on stderr
    const p = spawn("bash", ["-c", `TIMEFORMAT='%U %S'; time gzip -9 -c '${input}' > '${output}'`], { stdio: ["ignore", "inherit", "pipe"] });
    let err = "";
    p.stderr.on("data", (d: Buffer) => (err += d.toString()));
    p.on("exit", (code) => {
      if (code !== 0) return reject(new Error(`gzip exited ${code}: ${err}`));
      const ms = performance.now() - t0;
      const [user, sys] = err.trim().split(/\s+/).slice(-2).map(Number);
      stat(output).then((st) => resolve({ ms, cpuMs: ((user ?? 0) + (sys ?? 0)) * 1000, size: st.size }), reject);
    });
  });
}

if (process.argv[2] === "--child") {
  await child();
} else {
  const load = loadavg();
  const input = await debianRootfsTar();
  const inSize = (await stat(input)).size;
  const dir = await mkdtemp(join(tmpdir(), "lazypull-bench-"));
  try {
    const levels = (process.env.BENCH_LEVELS ?? "9").split(",").map(Number);
    const g = await gzip9(input, join(dir, "out.tar.gz"));
    const rows: string[] = [];
    const fmt = (name: string, r: Run, rss: string): string =>
      `${name.padEnd(22)} ${(inSize / MB / (r.ms / 1000)).toFixed(1).padStart(7)} MB/s  ${(r.ms / 1000).toFixed(2).padStart(6)} s  ${(r.cpuMs / 1000).toFixed(2).padStart(6)} s  ${rss.padStart(9)}  ${(r.size / MB).toFixed(2).padStart(7)} MB`;
    rows.push(fmt("gzip -9 (1 process)", g, "n/a"));
    for (const level of levels) {
      const r = await runChild([input, join(dir, `out-${level}.esgz`), String(level)]);
      rows.push(fmt(`lazypull convert -l${level}`, r, `${((r.maxRssKb ?? 0) / 1024).toFixed(0)} MB`));
      rows.push(`  → ${(g.ms / r.ms).toFixed(2)}× gzip -9 wall-clock throughput, ${(g.cpuMs / r.cpuMs).toFixed(2)}× less CPU, size ${((r.size / g.size) * 100).toFixed(1)}% of gzip -9`);
      // On an idle machine the wall time is bounded below by the busier of: the main thread, and all CPU spread over the cores.
      const cores = availableParallelism();
      const idealMs = Math.max(r.mainMs ?? 0, r.cpuMs / cores);
      rows.push(`  → main thread busy ${((r.mainMs ?? 0) / 1000).toFixed(2)} s; idle-machine bound ${(idealMs / 1000).toFixed(2)} s on ${cores} cores = ${(g.cpuMs / idealMs).toFixed(2)}× gzip -9's CPU-bound time`);
    }
    console.log(`input: ${input} (${(inSize / MB).toFixed(1)} MB)`);
    console.log(`load average at start: ${load.map((l) => l.toFixed(2)).join(" ")} on ${availableParallelism()} CPUs (wall-clock figures are only meaningful on an idle machine)`);
    console.log(`${"".padEnd(22)} ${"input".padStart(12)} ${"wall".padStart(8)} ${"CPU".padStart(8)} ${"peak RSS".padStart(10)} ${"output".padStart(10)}`);
    for (const r of rows) console.log(r);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
