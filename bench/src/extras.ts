import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { run } from "@lazypull/testkit";
import { CLI } from "./contenders.js";
import { check, liveChildren, spawnTimed } from "./spawn-timed.js";

const MiB = 1024 * 1024;

export interface ConversionFigures {
  /** `lazypull convert layer.tar.gz out.esgz` of the minbase layer, local files */
  localMiBps: number;
  /** baseline: `gzip -9` of the same uncompressed tar, in the same run */
  gzip9MiBps: number;
  tarBytes: number;
}

/** Conversion throughput on local files (uncompressed MiB per second), next to plain `gzip -9`. */
export async function measureConversion(tarGz: string, tar: string): Promise<ConversionFigures> {
  const dir = await mkdtemp(join(tmpdir(), "lazypull-bench-convert-"));
  try {
    const tarBytes = (await stat(tar)).size;
    const conv = check("lazypull convert (local)", await spawnTimed(CLI, ["convert", tarGz, join(dir, "out.esgz")]));
    const gz = check("gzip -9", await spawnTimed("sh", ["-c", `gzip -9 -c '${tar}' > '${join(dir, "out.gz")}'`]));
    return { localMiBps: tarBytes / MiB / (conv.exitMs / 1000), gzip9MiBps: tarBytes / MiB / (gz.exitMs / 1000), tarBytes };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface ReadFigures {
  path: string;
  bytes: number;
  /** first read through a fresh mount over the shaped link (cold cache, --prefetch none) */
  coldMiBps: number;
  /** fresh mount over a filled blob-cache (no kernel page cache) */
  warmMiBps: number;
  /** the same file on local disk: page cache, and O_DIRECT */
  localCachedMiBps: number;
  localDirectMiBps: number;
}

/** The largest regular file in a tar, by its listing. */
export async function largestFile(tar: string): Promise<{ path: string; size: number }> {
  const out = (await run("tar", ["-tvf", tar])).stdout;
  let best = { path: "", size: 0 };
  for (const line of out.split("\n")) {
    const m = /^-\S+\s+\S+\s+(\d+)\s+\S+\s+\S+\s+(.+)$/.exec(line);
    if (m && Number(m[1]) > best.size) best = { path: m[2]!, size: Number(m[1]) };
  }
  return best;
}

async function dd(path: string, direct = false): Promise<number> {
  const r = check("dd", await spawnTimed("dd", [`if=${path}`, "of=/dev/null", "bs=1M", "status=none", ...(direct ? ["iflag=direct"] : [])]));
  return r.exitMs / 1000;
}

/** `lazypull mount` in the foreground until `fn` is done; SIGINT unmounts. */
async function withMount<T>(image: string, env: NodeJS.ProcessEnv, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "lazypull-bench-mnt-"));
  const child = spawn(CLI, ["mount", "--prefetch", "none", image, dir], { env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "pipe"] });
  liveChildren.add(child);
  let stderr = "";
  child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<void>((r) => child.once("close", () => r()));
  try {
    const deadline = Date.now() + 60_000;
    while (!existsSync(join(dir, "usr", "bin"))) {
      if (child.exitCode !== null) throw new Error(`lazypull mount exited ${child.exitCode}: ${stderr}`);
      if (Date.now() > deadline) throw new Error(`lazypull mount did not come up in 60s: ${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return await fn(dir);
  } finally {
    child.kill("SIGINT");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
    if (child.exitCode === null) child.kill("SIGKILL");
    liveChildren.delete(child);
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Sequential read rate of one big file through a lazypull mount, cold then warm, next to local disk. */
export async function measureReads(image: string, tar: string): Promise<ReadFigures> {
  const { path, size } = await largestFile(tar);
  const rel = path.replace(/^\.?\//, "");
  const dir = await mkdtemp(join(tmpdir(), "lazypull-bench-read-"));
  const env = { LAZYPULL_CACHE_DIR: join(dir, "cache"), LAZYPULL_STATE_DIR: join(dir, "state") };
  try {
    const cold = await withMount(image, env, (m) => dd(join(m, rel)));
    const warm = await withMount(image, env, (m) => dd(join(m, rel)));
    const local = join(dir, "local");
    await mkdir(local);
    await run("tar", ["-xf", tar, "-C", local, path]);
    const localCached = await dd(join(local, rel));
    const localDirect = await dd(join(local, rel), true);
    const rate = (s: number) => size / MiB / s;
    return { path: `/${rel}`, bytes: size, coldMiBps: rate(cold), warmMiBps: rate(warm), localCachedMiBps: rate(localCached), localDirectMiBps: rate(localDirect) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
