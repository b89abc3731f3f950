/**
 * Daemon memory with a big tree: builds a synthetic image of 20,000+ small files (tar → gzip image →
 * eStargz), starts a real lazypulld, measures its RSS idle (the baseline), mounts the image through
 * the API, walks it (stat + read every file), waits for background fetch, and reports RSS from
 * /proc/<pid>/status. Budget: 250 MB for the default 20,000 files (apps/daemon/README.md, "Memory").
 *
 *   pnpm --filter @lazypull/daemon bench            (FILES=30000 to change the size)
 */
import { mkdir, mkdtemp, readdir, readFile, rm, lstat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DaemonClient } from "@lazypull/daemon-client";
import { convertImage } from "@lazypull/image-convert";
import { RegistryClient } from "@lazypull/registry-client";
import { importImage, run, startRegistry, spawnDaemon } from "@lazypull/testkit";
import { mountsUnder } from "../test/helpers.js";

const FILES = Number(process.env.FILES ?? 20_000);
const PER_DIR = 100;
const BUDGET_MB = 250;

async function rss(pid: number): Promise<{ rssMB: number; hwmMB: number }> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { rssMB: +(kb("VmRSS") / 1024).toFixed(1), hwmMB: +(kb("VmHWM") / 1024).toFixed(1) };
}

async function walk(dir: string): Promise<{ files: number; dirs: number; bytes: number }> {
  const acc = { files: 0, dirs: 0, bytes: 0 };
  const stack = [dir];
  while (stack.length) {
    const d = stack.pop()!;
    acc.dirs++;
    const names = await readdir(d);
    // a few files at a time: enough parallelism for FUSE, bounded for the bench process
    for (let i = 0; i < names.length; i += 16) {
      await Promise.all(
        names.slice(i, i + 16).map(async (n) => {
          const p = join(d, n);
          const st = await lstat(p);
          if (st.isDirectory()) stack.push(p);
          else if (st.isFile()) {
            acc.files++;
            if (process.env.WALK === "stat") return;
            const got = await readFile(p);
            if (got.length !== st.size) throw new Error(`${p}: read ${got.length} bytes, stat says ${st.size}`);
            acc.bytes += got.length;
          }
        }),
      );
    }
  }
  return acc;
}

const work = await mkdtemp(join(tmpdir(), "lazypulld-rss-"));
const registry = await startRegistry();
let daemon: Awaited<ReturnType<typeof spawnDaemon>> | undefined;
try {
  const t0 = Date.now();
  const tree = join(work, "tree");
  for (let d = 0; d < Math.ceil(FILES / PER_DIR); d++) {
    const sub = join(tree, "usr", "share", `pkg-${d}`);
    await mkdir(sub, { recursive: true });
    for (let f = 0; f < PER_DIR && d * PER_DIR + f < FILES; f++) {
      await writeFile(join(sub, `file-${f}.txt`), `package ${d} file ${f}\n`.repeat(1 + ((d * 7 + f) % 40)));
    }
  }
  await run("tar", ["--numeric-owner", "-C", tree, "-cf", join(work, "layer.tar"), "."]);
  const img = await importImage({ registryHost: registry.host, repository: "bench/many", layers: [{ tar: join(work, "layer.tar") }] });
  const rc = new RegistryClient();
  const ref = `${registry.host}/bench/many-estargz:v1`;
  await convertImage({ client: rc, source: img.ref, destination: ref });
  await rc.close();
  const buildSec = (Date.now() - t0) / 1000;

  await mkdir(join(work, "run"), { mode: 0o700 });
  const socket = join(work, "run", "lazypulld.sock");
  const root = join(work, "root");
  // DAEMON_NODE_ARGS gives node flags (the bin runs with none), e.g. DAEMON_NODE_ARGS=--optimize-for-size
  const nodeArgs = (process.env.DAEMON_NODE_ARGS ?? "").split(" ").filter(Boolean);
  daemon = await spawnDaemon({ socket, root, nodeArgs, dist: process.env.DAEMON_DIST === "1", extra: ["--cache-dir", join(work, "cache"), "--log-level", "warn", "--prefetch", process.env.PREFETCH ?? "all", ...(process.env.CACHE_MEM ? ["--cache-memory-size", process.env.CACHE_MEM] : [])] });
  const client = new DaemonClient({ socketPath: socket });
  await new Promise((r) => setTimeout(r, 1000));
  const idle = await rss(daemon.pid);

  const t1 = Date.now();
  const lease = await client.acquire({ reference: ref });
  const mounted = await rss(daemon.pid);
  // what the daemon reports about itself while the walk runs: which part of memory makes the peak
  const peaks: Record<string, number> = {};
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const m = (await client.health()).memory;
      for (const [k, v] of Object.entries(m)) peaks[k] = Math.max(peaks[k] ?? 0, +(v / 2 ** 20).toFixed(1));
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  const walked = await walk(lease.lowerDirs[0]!).finally(() => (sampling = false));
  await sampler;
  const walkSec = (Date.now() - t1) / 1000;
  const afterWalk = await rss(daemon.pid);
  if (process.env.SNAPSHOT) {
    // needs DAEMON_NODE_ARGS=--heapsnapshot-signal=SIGUSR2; the file lands in the repo root
    process.kill(daemon.pid, "SIGUSR2");
    await new Promise((r) => setTimeout(r, 30_000));
  }
  if (process.env.SMAPS) {
    const smaps = await readFile(`/proc/${daemon.pid}/smaps`, "utf8");
    const maps: { name: string; rss: number }[] = [];
    let cur = { name: "", rss: 0 };
    for (const line of smaps.split("\n")) {
      const m = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
      if (m) maps.push((cur = { name: m[1] || "[anon]", rss: 0 }));
      const r = /^Rss:\s+(\d+) kB/.exec(line);
      if (r) cur.rss += Number(r[1]);
    }
    const by = new Map<string, number>();
    for (const m of maps) by.set(m.name, (by.get(m.name) ?? 0) + m.rss);
    console.error([...by].sort((a, b) => b[1] - a[1]).slice(0, 8));
    console.error(maps.filter((m) => m.name === "[anon]").sort((a, b) => b.rss - a.rss).slice(0, 10).map((m) => m.rss));
  }
  // with prefetch "none" nothing runs in the background: a layer stays "ready"
  for (let i = 0; i < 600 && (process.env.PREFETCH ?? "all") !== "none"; i++) {
    const layers = await client.layers();
    if (layers.every((l) => l.state === "complete" || l.state === "error")) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  const settled = await rss(daemon.pid);
  const heap = (await client.health()).memory;
  const layers = await client.layers();
  await client.release(lease.id);
  await client.close();

  const report = {
    daemon: process.env.DAEMON_DIST === "1" ? "dist/main.js" : "src/main.ts via tsx",
    nodeArgs,
    prefetch: process.env.PREFETCH ?? "all",
    walk: process.env.WALK === "stat" ? "stat every entry" : "stat and read every file",
    files: walked.files,
    dirs: walked.dirs,
    bytesRead: walked.bytes,
    layerState: layers.map((l) => l.state),
    buildSec,
    walkSec,
    rssMB: { idleBaseline: idle.rssMB, afterMount: mounted.rssMB, afterWalk: afterWalk.rssMB, afterBackgroundFetch: settled.rssMB, peak: settled.hwmMB },
    walkPeaksMB: peaks,
    heapMB: Object.fromEntries(Object.entries(heap).map(([k, v]) => [k, +(v / 2 ** 20).toFixed(1)])),
    budgetMB: BUDGET_MB,
    withinBudget: settled.hwmMB < BUDGET_MB,
  };
  console.log(JSON.stringify(report, null, 2));
  if (walked.files < FILES) throw new Error(`walked ${walked.files} files, expected ${FILES}`);
} finally {
  if (daemon && (daemon.child.exitCode !== null || daemon.child.signalCode !== null)) console.error(`lazypulld died: ${daemon.log().slice(-3000)}`);
  if (daemon && daemon.child.exitCode === null) {
    daemon.child.kill("SIGTERM");
    await daemon.exited;
  }
  const left = await mountsUnder(work);
  if (left.length) console.error(`mounts left behind: ${left.join(", ")}`);
  await registry.stop();
  await rm(work, { recursive: true, force: true });
}
