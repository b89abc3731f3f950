import { spawn } from "node:child_process";
import { chown, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isDaemonAvailable } from "@lazypull/daemon-client";
import { effectiveUlimits, ulimitArgs, type HostConfig } from "@lazypull/overlay-launcher";
import { userEnv, type TestUser } from "@lazypull/testkit";
import { lazyBreakdown, type LazyBreakdown } from "./breakdown.js";
import type { DelayProxy, ProxyCounters } from "./delay-proxy.js";
import { check, spawnTimed } from "./spawn-timed.js";

export const REPO_ROOT = join(import.meta.dirname, "..", "..");
/**
 * The built CLI's bin, run as installed users run it (`pnpm bench` builds it first): executed, so its
 * shebang's node flags (none today) apply, those its code cache was made with; tsx would add ~0.2 s per start.
 */
export const CLI = join(REPO_ROOT, "apps/cli/dist/lazypull.mjs");

export type ContenderId =
  | "podman-pull-run"
  | "lazypull-none"
  | "lazypull-landmark"
  | "lazypull-baseline"
  | "lazypull-recorded"
  | "lazypull-rootless"
  | "lazypull-daemon"
  | "lazypull-daemon-baseline"
  | "podman-lazypulld"
  | "podman-lazypulld-nosilence"
  | "podman-lazypulld-none";

/** lazypulld settings of the plain-podman contenders: its defaults, and two variants that show what they buy */
export const DAEMON_VARIANTS = {
  "podman-lazypulld": {},
  // background fetching as before its quiet period: it starts as soon as no read is pending
  "podman-lazypulld-nosilence": { backgroundSilenceMs: 0 },
  "podman-lazypulld-none": { prefetch: "none" },
} as const;
/** lazypulld as installed users run it (the bench builds it first) */
export const DAEMON = join(REPO_ROOT, "apps/daemon/dist/main.js");

export interface Sample {
  workload: string;
  contender: ContenderId;
  rep: number;
  /** spawn → first stdout byte of the command (for podman: whole pull + run's first byte) */
  firstOutputMs: number;
  /** spawn → exit (podman: pull + run) */
  totalMs: number;
  /** link bytes (both directions) and HTTP requests before the first output */
  bytesAtFirstOutput: number;
  requestsAtFirstOutput: number;
  /** …and by the time the command exited */
  bytesTotal: number;
  requestsTotal: number;
  /** compressed layer bytes of the image this contender runs */
  imageBytes: number;
  breakdown: Partial<LazyBreakdown> & { pull?: number; run?: number; lazypullReady?: number; fuseOps?: number };
  /** the lazy run's requests up to exit: ms after spawn, method, path tail, range, response bytes, ms to last byte */
  requests?: { t: number; req: string; range?: string; bytes: number; ms: number }[];
  /** what lazypull itself counted (`--stats`) */
  lazypullStats?: { bytes: number; requests: number };
  /** which overlay `lazypull run` stacked the layers with (`--stats`) */
  overlay?: string;
}

export interface ContenderContext {
  proxy: DelayProxy;
  host: HostConfig;
  workload: { id: string; command: string[] };
  image: { ref: string; bytes: number; layerSizes: Map<string, number> };
  rep: number;
  /**
   * Drops the page cache (a no-op with --keep-page-cache). Each contender calls it just before its
   * t0, after anything that is already running on a real host (lazypulld) is up: otherwise starting
   * the daemon would warm the files the timed run then reads.
   */
  coldStart: () => Promise<void>;
}

const linkBytes = (c: ProxyCounters) => c.bytesUp + c.bytesDown;

function parseDuration(s: string): number {
  const m = /^(?:(\d+)m(\d+)s|([\d.]+)(ms|s))$/.exec(s);
  if (!m) return NaN;
  if (m[1] !== undefined) return (Number(m[1]) * 60 + Number(m[2])) * 1000;
  return Number(m[3]) * (m[4] === "ms" ? 1 : 1000);
}

function parseBytes(s: string): number {
  const m = /^([\d.]+) (B|KiB|MiB|GiB)$/.exec(s);
  if (!m) return NaN;
  return Number(m[1]) * 1024 ** ["B", "KiB", "MiB", "GiB"].indexOf(m[2]!);
}

/** Full `podman pull` into a private, empty store, then `podman run` of it, as a user without lazypull would. */
export async function runPodman(ctx: ContenderContext): Promise<Sample> {
  const { proxy, host, image } = ctx;
  const dir = await mkdtemp(join(tmpdir(), "lazypull-bench-podman-"));
  const store = ["--root", join(dir, "root"), "--runroot", join(dir, "runroot"), ...host.podman.globalArgs];
  const podman = host.podman.binary;
  try {
    await ctx.coldStart();
    const exists = await spawnTimed(podman, [...store, "image", "exists", image.ref]);
    if (exists.code === 0) throw new Error(`private podman store ${dir} already holds ${image.ref}: not a full pull`);
    proxy.reset();
    const pull = check("podman pull", await spawnTimed(podman, [...store, "pull", "--quiet", "--tls-verify=false", image.ref]));
    let atFirst = proxy.counters();
    const ulimits = ulimitArgs(await effectiveUlimits(host));
    const network = host.podman.network ? ["--network", host.podman.network] : [];
    const args = [...store, "run", "--rm", "--runtime", host.podman.runtime, ...ulimits, ...network, ...host.podman.runArgs, image.ref, ...ctx.workload.command];
    const run = check("podman run", await spawnTimed(podman, args, { onFirstOutput: () => (atFirst = proxy.counters()) }));
    if (run.firstOutputMs === undefined) throw new Error("podman run printed nothing");
    const end = proxy.counters();
    return {
      workload: ctx.workload.id,
      contender: "podman-pull-run",
      rep: ctx.rep,
      firstOutputMs: pull.exitMs + run.firstOutputMs,
      totalMs: pull.exitMs + run.exitMs,
      bytesAtFirstOutput: linkBytes(atFirst),
      requestsAtFirstOutput: atFirst.requests,
      bytesTotal: linkBytes(end),
      requestsTotal: end.requests,
      imageBytes: image.bytes,
      breakdown: { pull: pull.exitMs, run: run.firstOutputMs },
    };
  } finally {
    await spawnTimed(podman, [...store, "rmi", "--all", "--force"]).catch(() => undefined);
    await spawnTimed(podman, [...store, "system", "reset", "--force"]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** How a `lazypull run` contender runs: its CLI flags, who runs it, and whether lazypulld serves its layers. */
export interface LazypullRunOptions {
  /** `--prefetch`; none: the CLI's default (with the daemon its own policy applies anyway) */
  prefetch?: "none" | "landmark";
  /** run by this ordinary user (rootless) */
  user?: TestUser;
  /** a lazypulld at its defaults, started (cold cache) and answering before t0, serves the layers */
  daemon?: boolean;
  /** another build's bin (`--baseline-cli`) instead of this checkout's */
  cli?: string;
  /** with `daemon`: another build's lazypulld (`--baseline-daemon`, its dist/main.js) instead of this checkout's */
  daemonEntry?: string;
}

/**
 * `lazypull run` from a cold, private cache and state dir; with `user`, run by that ordinary user (rootless:
 * lazypull enters rootless podman's namespaces itself, and the time to do so is part of the sample).
 * With `daemon`, the CLI finds lazypulld on `LAZYPULL_SOCKET` and is forbidden to fall back to serving
 * the image itself (`LAZYPULL_REQUIRE_DAEMON=1`), so the sample can only be the daemon-backed start.
 */
export async function runLazypull(ctx: ContenderContext, contender: ContenderId, opts: LazypullRunOptions = {}): Promise<Sample> {
  const { proxy, image } = ctx;
  const { user } = opts;
  const dir = await mkdtemp(join(tmpdir(), "lazypull-bench-lazy-"));
  let daemon: Daemon | undefined;
  try {
    if (opts.daemon) daemon = await startDaemon(join(dir, "lazypulld"), DAEMON_VARIANTS["podman-lazypulld"], opts.daemonEntry);
    const env = {
      ...(user ? userEnv(user) : {}),
      LAZYPULL_CACHE_DIR: join(dir, "cache"),
      LAZYPULL_STATE_DIR: join(dir, "state"),
      ...(daemon ? { LAZYPULL_SOCKET: daemon.socket, LAZYPULL_REQUIRE_DAEMON: "1" } : {}),
    };
    if (user) await chown(dir, user.uid, user.gid);
    await ctx.coldStart();
    proxy.reset();
    let atFirst = proxy.counters();
    const prefetch = opts.prefetch ? ["--prefetch", opts.prefetch] : [];
    const args = ["run", ...prefetch, "--stats", "--rm", image.ref, ...ctx.workload.command];
    const r = check(
      `lazypull run (${contender})`,
      await spawnTimed(opts.cli ?? CLI, args, { env, ...(user ? { uid: user.uid, gid: user.gid } : {}), onFirstOutput: () => (atFirst = proxy.counters()) }),
    );
    if (r.firstOutputMs === undefined) throw new Error(`lazypull run (${contender}) printed nothing`);
    // a lazypulld on the host's default socket would serve the in-process contenders too: refuse the sample
    const servedByDaemon = r.stderr.includes("(layers served by lazypulld)");
    if (servedByDaemon !== Boolean(daemon)) {
      throw new Error(`lazypull run (${contender}): layers ${servedByDaemon ? "served by a lazypulld" : "served in-process"}, expected the other; stderr: ${r.stderr.slice(-2000)}`);
    }
    const end = proxy.counters();
    const stats = /image ready in (\S+), container exited \d+ after \S+; fetched (.+?) in (\d+) requests/.exec(r.stderr);
    const overlay = /; overlay: ([\w-]+)/.exec(r.stderr)?.[1];
    const fuseOps = /; (\d+) FUSE ops/.exec(r.stderr)?.[1];
    return {
      workload: ctx.workload.id,
      contender,
      rep: ctx.rep,
      firstOutputMs: r.firstOutputMs,
      totalMs: r.exitMs,
      bytesAtFirstOutput: linkBytes(atFirst),
      requestsAtFirstOutput: atFirst.requests,
      bytesTotal: linkBytes(end),
      requestsTotal: end.requests,
      imageBytes: image.bytes,
      breakdown: {
        ...lazyBreakdown(proxy.log(), r.spawnedAt, r.firstOutputMs, image.layerSizes),
        ...(stats ? { lazypullReady: parseDuration(stats[1]!) } : {}),
        ...(fuseOps !== undefined ? { fuseOps: Number(fuseOps) } : {}),
      },
      ...(overlay ? { overlay } : {}),
      requests: proxy.log().map((q) => ({
        t: Math.round(q.at - r.spawnedAt),
        req: `${q.method} ${q.path.replace(/^\/v2\/[^]*?\/(manifests|blobs)\//, "$1/").slice(0, 24)}`,
        ...(q.range ? { range: q.range } : {}),
        bytes: q.responseBytes,
        ms: Math.round((q.doneAt || q.at) - q.at),
      })),
      ...(stats ? { lazypullStats: { bytes: parseBytes(stats[2]!), requests: Number(stats[3]) } } : {}),
    };
  } finally {
    await daemon?.stop();
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

interface Daemon {
  socket: string;
  /** podman's Additional Layer Store it serves */
  layerStore: string;
  stop(): Promise<void>;
}

/**
 * The built lazypulld with `settings` and everything of its own under `dir` (socket, root, layer store,
 * cold cache), started and answering before this returns: on a host it runs as a service, so its
 * start is not part of any sample.
 */
async function startDaemon(dir: string, settings: object, entry = DAEMON): Promise<Daemon> {
  const layerStore = join(dir, "store");
  const socket = join(dir, "run", "lazypulld.sock");
  await mkdir(join(dir, "run"), { recursive: true, mode: 0o700 });
  const config = join(dir, "lazypulld.json");
  await writeFile(config, JSON.stringify(settings));
  const daemon = spawn(process.execPath, [entry, "--config", config, "--socket", socket, "--root", join(dir, "daemon"), "--store", layerStore, "--cache-dir", join(dir, "cache"), "--log-level", "warn"], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let daemonErr = "";
  daemon.stderr.on("data", (b: Buffer) => (daemonErr = (daemonErr + b.toString()).slice(-4000)));
  const exited = new Promise<void>((r) => daemon.once("exit", () => r()));
  const stop = async () => {
    daemon.kill("SIGTERM");
    await exited;
  };
  try {
    for (let i = 0; !(await isDaemonAvailable(socket, 500)); i++) {
      if (daemon.exitCode !== null || i > 300) throw new Error(`lazypulld did not come up: ${daemonErr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { socket, layerStore, stop };
}

/**
 * Plain `podman run` of the eStargz image into a fresh private store whose storage options name
 * lazypulld's Additional Layer Store: podman pulls (manifest, config, no layer blobs) and runs on
 * layers served by the daemon. lazypulld runs at its defaults with a cold cache and is already up at
 * t0, as it would be on a host (its start is not timed).
 */
export async function runPodmanLazypulld(ctx: ContenderContext, contender: keyof typeof DAEMON_VARIANTS = "podman-lazypulld"): Promise<Sample> {
  const { proxy, host, image } = ctx;
  const dir = await mkdtemp(join(tmpdir(), "lazypull-bench-als-"));
  const daemon = await startDaemon(dir, DAEMON_VARIANTS[contender]).catch(async (err: unknown) => {
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  });
  const store = ["--root", join(dir, "root"), "--runroot", join(dir, "runroot"), "--storage-opt", `overlay.additionallayerstore=${daemon.layerStore}:ref`, ...host.podman.globalArgs];
  const podman = host.podman.binary;
  try {
    await ctx.coldStart();
    proxy.reset();
    let atFirst = proxy.counters();
    const ulimits = ulimitArgs(await effectiveUlimits(host));
    const network = host.podman.network ? ["--network", host.podman.network] : [];
    const args = [...store, "run", "--rm", "--tls-verify=false", "--runtime", host.podman.runtime, ...ulimits, ...network, ...host.podman.runArgs, image.ref, ...ctx.workload.command];
    const run = check("podman run via lazypulld", await spawnTimed(podman, args, { onFirstOutput: () => (atFirst = proxy.counters()) }));
    if (run.firstOutputMs === undefined) throw new Error("podman run via lazypulld printed nothing");
    const end = proxy.counters();
    return {
      workload: ctx.workload.id,
      contender,
      rep: ctx.rep,
      firstOutputMs: run.firstOutputMs,
      totalMs: run.exitMs,
      bytesAtFirstOutput: linkBytes(atFirst),
      requestsAtFirstOutput: atFirst.requests,
      bytesTotal: linkBytes(end),
      requestsTotal: end.requests,
      imageBytes: image.bytes,
      breakdown: lazyBreakdown(proxy.log(), run.spawnedAt, run.firstOutputMs, image.layerSizes),
    };
  } finally {
    await spawnTimed(podman, [...store, "rmi", "--all", "--force"]).catch(() => undefined);
    await spawnTimed(podman, [...store, "system", "reset", "--force"]).catch(() => undefined);
    await daemon.stop();
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}
