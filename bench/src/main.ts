/**
 * `pnpm bench`: lazypull against a full podman pull over a shaped, delayed link, every contender in
 * one run, cold each repetition; then the same on the slower link with a subset (src/plan.ts).
 * Results: bench/results/<date>-<profile>.{json,md,svg} per profile; a full default run (both
 * profiles, every workload and contender, 3+ reps) also rewrites the README's Benchmarks section.
 *
 *   pnpm bench [--profile 100mbit/20ms-rtt|20mbit/50ms-rtt] [--reps 3] [--workloads minbase,python,numpy] [--contenders a,b] [--no-extras] [--keep-page-cache] [--baseline-cli PATH [--cli PATH]] [--baseline-daemon PATH]
 */
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, release, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { loadHostConfig } from "@lazypull/overlay-launcher";
import { debianRootfsTar, ensureTestUser, importImage, openHostToUsers, restoreHostModes, type TestUser } from "@lazypull/testkit";
import { CLI, REPO_ROOT, runLazypull, runPodman, runPodmanLazypulld, type ContenderContext, type ContenderId, type Sample } from "./contenders.js";
import { startDelayProxy, type DelayProxy } from "./delay-proxy.js";
import { measureConversion, measureReads } from "./extras.js";
import { createShapedLink, type ShapedLink } from "./netns.js";
import { startNetnsRegistry } from "./netns-registry.js";
import { planRuns, type ProfileRun } from "./plan.js";
import { markdown, readmeSection, svgChart, type BenchResult } from "./report.js";
import { check, liveChildren, spawnTimed } from "./spawn-timed.js";

// `pnpm bench -- --reps 1` hands the script a literal "--" first; after it parseArgs takes every flag as positional
const argv = process.argv.slice(2);
const { values: flags } = parseArgs({
  args: argv[0] === "--" ? argv.slice(1) : argv,
  options: {
    // none: the default profile with everything, then the slower link with its subset (src/plan.ts)
    profile: { type: "string" },
    reps: { type: "string", default: "3" },
    workloads: { type: "string" },
    "no-extras": { type: "boolean", default: false },
    // by default every sample starts with the page cache dropped, as on a host that has not run
    // lazypull, podman or the image lately (node, podman and their libraries are read from disk too)
    "keep-page-cache": { type: "boolean", default: false },
    // a subset of the contenders (ids as in the results), e.g. to compare two without a full run
    contenders: { type: "string" },
    // another build's bin, run as contender lazypull-baseline right after lazypull-landmark in each
    // repetition: a before/after in one run (build one with scripts/baseline-cli.sh REV)
    "baseline-cli": { type: "string" },
    // the bin lazypull-landmark runs instead of this checkout's build: with --baseline-cli, any two builds
    cli: { type: "string" },
    // another build's lazypulld (apps/daemon/dist/main.js), run as contender lazypull-daemon-baseline right
    // after lazypull-daemon (scripts/baseline-cli.sh REV builds both and prints where)
    "baseline-daemon": { type: "string" },
  },
});
const plan = planRuns(flags);
const reps = Number(flags.reps);

const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);

/** Writes dirty pages, then drops the page cache, dentries and inodes (root only). */
async function dropPageCache(): Promise<void> {
  check("sync", await spawnTimed("sync", []));
  await writeFile("/proc/sys/vm/drop_caches", "3\n");
}
const coldStart = flags["keep-page-cache"] ? async () => undefined : dropPageCache;

async function manifestLayers(proxy: DelayProxy, ref: string): Promise<Map<string, number>> {
  const [, repo, tag] = /^[^/]+\/(.+):([^:]+)$/.exec(ref)!;
  const res = await fetch(`http://${proxy.host}/v2/${repo}/manifests/${tag}`, {
    headers: { accept: "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json" },
  });
  if (!res.ok) throw new Error(`manifest of ${ref}: HTTP ${res.status}`);
  const m = (await res.json()) as { layers: { digest: string; size: number }[] };
  return new Map(m.layers.map((l) => [l.digest, l.size]));
}
const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

// each profile has its own link, registry and proxy, closed before the next profile's are made
let link: ShapedLink | undefined;
let registry: Awaited<ReturnType<typeof startNetnsRegistry>> | undefined;
let proxy: DelayProxy | undefined;
async function closeLink(): Promise<void> {
  await proxy?.close();
  await registry?.stop();
  await link?.destroy();
  proxy = registry = link = undefined;
}
const work = await mkdtemp(join(tmpdir(), "lazypull-bench-"));
let signalled = false;
let tearingDown: Promise<void> | undefined;
const teardown = () => (tearingDown ??= doTeardown());
async function doTeardown(): Promise<void> {
  for (const c of liveChildren) c.kill("SIGTERM");
  const deadline = Date.now() + 20_000;
  while (liveChildren.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  for (const c of liveChildren) c.kill("SIGKILL");
  await closeLink();
  await restoreHostModes();
  await rm(work, { recursive: true, force: true }).catch(() => undefined);
}
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => {
    log(`${sig}: tearing down`);
    signalled = true;
    void teardown().finally(() => process.exit(130));
  });
}

/** One profile: its link, registry and proxy; the images; every repetition; the result files. */
async function runProfile(run: ProfileRun, rootlessUser: TestUser | undefined): Promise<{ result: BenchResult; stem: string }> {
  const { profile, workloads } = run;
  const wanted = (id: ContenderId) => run.contenders.includes(id);
  const asRootless = (): TestUser => {
    if (!rootlessUser) throw new Error("the rootless contender has no user");
    return rootlessUser;
  };
  link = await createShapedLink(profile);
  registry = await startNetnsRegistry(link.netns, link.nsAddr);
  proxy = await startDelayProxy({ target: registry.address, rttMs: profile.rttMs });
  const host = await loadHostConfig();
  log(`link ${profile.name}: registry ${link.nsAddr}:5000 in netns ${link.netns}, delaying proxy ${proxy.host}`);
  const result: BenchResult = {
    date: new Date().toISOString(),
    profile,
    reps,
    pageCache: flags["keep-page-cache"] ? "kept" : "dropped",
    host: { cpus: cpus().length, load: loadavg(), kernel: release() },
    workloads: [],
    samples: [],
  };
  type Image = ContenderContext["image"];
  const images = new Map<string, { orig: Image; esgz: Image; rec?: Image }>();
  const img = async (ref: string) => {
    const layerSizes = await manifestLayers(proxy!, ref);
    return { ref, bytes: total(layerSizes), layerSizes };
  };
  for (const w of workloads) {
    log(`${w.id}: building the root filesystem (cached) and pushing it as an ordinary gzip image`);
    const tar = await debianRootfsTar({ include: w.include });
    const src = await importImage({ registryHost: proxy.host, repository: `bench/${w.id}`, tag: "orig", layers: [{ tar }] });
    const esgzRef = `${proxy.host}/bench/${w.id}:esgz`;
    log(`${w.id}: lazypull convert`);
    const conv = check("lazypull convert", await spawnTimed(CLI, ["convert", src.ref, esgzRef]));
    // the recorded image is only for its contender: on the slow link its two conversions would cost minutes
    let recorded: { image: Image; files: number } | undefined;
    if (wanted("lazypull-recorded")) {
      const recRef = `${proxy.host}/bench/${w.id}:esgz-recorded`;
      log(`${w.id}: recording the command's file accesses, converting again with --prioritize`);
      const accessFile = join(work, `${w.id}.access`);
      const recEnv = { LAZYPULL_CACHE_DIR: join(work, `${w.id}-rec-cache`), LAZYPULL_STATE_DIR: join(work, `${w.id}-rec-state`) };
      check("lazypull run --record-access", await spawnTimed(CLI, ["run", "--prefetch", "none", "--record-access", accessFile, "--rm", esgzRef, ...w.command], { env: recEnv }));
      // `--record-access` writes image paths in first-read order: exactly what `--prioritize` takes
      const files = (await readFile(accessFile, "utf8")).split("\n").filter(Boolean).length;
      check("lazypull convert --prioritize", await spawnTimed(CLI, ["convert", "--prioritize", accessFile, src.ref, recRef]));
      recorded = { image: await img(recRef), files };
    }
    const set = { orig: await img(src.ref), esgz: await img(esgzRef), rec: recorded?.image };
    images.set(w.id, set);
    result.workloads.push({
      id: w.id,
      title: w.title,
      command: w.command,
      originalBytes: set.orig.bytes,
      estargzBytes: set.esgz.bytes,
      ...(recorded ? { recordedBytes: recorded.image.bytes, recordedFiles: recorded.files } : {}),
      convertOverLinkMs: conv.exitMs,
    });
  }

  const sampleLine = (s: Sample) =>
    `${profile.name} ${s.workload} ${s.contender} #${s.rep}: first output ${(s.firstOutputMs / 1000).toFixed(2)} s, ${(s.bytesAtFirstOutput / 1e6).toFixed(2)} MB / ${s.requestsAtFirstOutput} req before it, ${(s.bytesTotal / 1e6).toFixed(2)} MB by exit`;
  for (let rep = 1; rep <= reps; rep++) {
    for (const w of workloads) {
      const set = images.get(w.id)!;
      // every contender drops the page cache itself, just before its t0 (after lazypulld is up)
      const ctx = (image: Image | undefined): ContenderContext => {
        if (!image) throw new Error(`${w.id}: no image for this contender`);
        return { proxy: proxy!, host, workload: w, image, rep, coldStart };
      };
      const runs: Record<ContenderId, () => Promise<Sample>> = {
        "podman-pull-run": () => runPodman(ctx(set.orig)),
        "lazypull-none": () => runLazypull(ctx(set.esgz), "lazypull-none", { prefetch: "none" }),
        "lazypull-landmark": () => runLazypull(ctx(set.esgz), "lazypull-landmark", { prefetch: "landmark", ...(flags.cli ? { cli: resolve(flags.cli) } : {}) }),
        "lazypull-baseline": () => runLazypull(ctx(set.esgz), "lazypull-baseline", { prefetch: "landmark", cli: resolve(flags["baseline-cli"]!) }),
        "lazypull-rootless": () => runLazypull(ctx(set.esgz), "lazypull-rootless", { prefetch: "landmark", user: asRootless() }),
        "lazypull-recorded": () => runLazypull(ctx(set.rec), "lazypull-recorded", { prefetch: "landmark" }),
        // the CLI at its defaults, its layers served by a lazypulld at its defaults
        "lazypull-daemon": () => runLazypull(ctx(set.esgz), "lazypull-daemon", { daemon: true }),
        "lazypull-daemon-baseline": () => runLazypull(ctx(set.esgz), "lazypull-daemon-baseline", { daemon: true, daemonEntry: resolve(flags["baseline-daemon"]!) }),
        "podman-lazypulld": () => runPodmanLazypulld(ctx(set.esgz)),
        "podman-lazypulld-nosilence": () => runPodmanLazypulld(ctx(set.esgz), "podman-lazypulld-nosilence"),
        "podman-lazypulld-none": () => runPodmanLazypulld(ctx(set.esgz), "podman-lazypulld-none"),
      };
      const samples: Sample[] = [];
      for (const id of run.contenders) samples.push(await runs[id]());
      for (const s of samples) {
        result.samples.push(s);
        log(sampleLine(s));
      }
    }
  }

  if (run.extras) {
    log("conversion throughput (local files) next to gzip -9");
    const tar = await debianRootfsTar();
    result.conversion = await measureConversion(`${tar}.gz`, tar);
    const big = workloads[workloads.length - 1]!;
    log(`sequential read of the largest file of ${big.id}: cold, warm, local disk`);
    result.reads = await measureReads(images.get(big.id)!.esgz.ref, await debianRootfsTar({ include: big.include }));
  }

  const dir = join(REPO_ROOT, "bench", "results");
  await mkdir(dir, { recursive: true });
  // a subset of contenders the user chose is a side measurement: its own file name
  const base = `${result.date.slice(0, 10)}-${profile.name.replace(/\W+/g, "-")}${run.suffix}`;
  // a second run of a day gets its own files: results already in bench/results are history (and cited)
  let stem = base;
  for (let n = 2; existsSync(join(dir, `${stem}.json`)); n++) stem = `${base}-${n}`;
  await writeFile(join(dir, `${stem}.json`), JSON.stringify(result, null, 2) + "\n");
  await writeFile(join(dir, `${stem}.svg`), svgChart(result));
  const md = markdown(result, `${stem}.svg`);
  await writeFile(join(dir, `${stem}.md`), md);
  process.stdout.write(md);
  log(`results in bench/results/${stem}.{json,md,svg}`);
  return { result, stem };
}

/** Rewrites the README between its markers with the tables of this invocation's profiles. */
async function updateReadme(done: { result: BenchResult; stem: string }[]): Promise<void> {
  const readme = join(REPO_ROOT, "README.md");
  const text = await readFile(readme, "utf8");
  const start = "<!-- bench:start -->";
  const end = "<!-- bench:end -->";
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  if (i < 0 || j < i) return;
  const body = readmeSection(done.map((d) => ({ result: d.result, chartFile: `bench/results/${d.stem}.svg` })));
  await writeFile(readme, `${text.slice(0, i + start.length)}\n${body}${text.slice(j)}`);
  log("README Benchmarks section updated");
}

async function main(): Promise<void> {
  log(`profiles: ${plan.runs.map((r) => `${r.profile.name} (${r.workloads.map((w) => w.id).join(", ")}; ${r.contenders.join(", ")})`).join(", then ")}`);
  // the rootless contender's ordinary user, set up as a host admin would (subordinate ids, /dev/fuse)
  let rootlessUser: TestUser | undefined;
  if (plan.runs.some((r) => r.contenders.includes("lazypull-rootless"))) {
    rootlessUser = await ensureTestUser("lazypull-bench");
    await openHostToUsers();
  }
  const done: { result: BenchResult; stem: string }[] = [];
  for (const run of plan.runs) {
    done.push(await runProfile(run, rootlessUser));
    await closeLink();
    // after each profile, so that a failure on the slow link still leaves the default profile's tables
    if (plan.readme && reps >= 3) await updateReadme(done);
  }
}

let failed = false;
try {
  await main();
} catch (err) {
  // after a signal, failures are the teardown pulling the link away; the signal handler exits
  if (!signalled) {
    failed = true;
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  }
} finally {
  await teardown();
}
if (signalled) await new Promise(() => undefined);
process.exit(failed ? 1 : 0);
