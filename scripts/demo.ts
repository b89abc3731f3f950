/**
 * The README's main job: on a fresh Debian 12 host, put a real Debian bookworm image into a local
 * registry, convert it to eStargz with `lazypull convert`, then start a container from it lazily with
 * `lazypull run` — next to a full `podman pull` + `podman run` of the original image, and to plain
 * `podman run` of the converted image through lazypulld's Additional Layer Store, timed in the same run.
 */
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isDaemonAvailable } from "@lazypull/daemon-client";
import { debianRootfsTar, importImage, run, startRegistry } from "@lazypull/testkit";

const root = join(import.meta.dirname, "..");
// the built CLI's bin, executed as an installed `lazypull` runs (`pnpm demo` builds it first): its shebang's
// node flags (none today) apply, those its code cache was made with
const cli = join(root, "apps/cli/dist/lazypull.mjs");
const daemonBin = join(root, "apps/daemon/dist/main.js");

function step(msg: string): void {
  process.stderr.write(`\n\x1b[1m==> ${msg}\x1b[0m\n`);
}

/** Runs a command with the terminal attached (so progress bars show) and returns its time and stdio. */
function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ ms: number; code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(cmd, args, { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => {
      stdout += b.toString();
      process.stdout.write(b);
    });
    child.stderr.on("data", (b: Buffer) => {
      stderr += b.toString();
      process.stderr.write(b);
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ ms: performance.now() - start, code, stdout, stderr }));
  });
}

const work = await mkdtemp(join(tmpdir(), "lazypull-demo-"));
const registry = await startRegistry();
const env = { LAZYPULL_STATE_DIR: join(work, "state"), LAZYPULL_CACHE_DIR: join(work, "cache") };
const store = ["--root", join(work, "podman", "root"), "--runroot", join(work, "podman", "runroot")];
// the podman way: a private podman store whose storage options name lazypulld's layer store
const layerStore = join(work, "layer-store");
const alsStore = ["--root", join(work, "podman-als", "root"), "--runroot", join(work, "podman-als", "runroot"), "--storage-opt", `overlay.additionallayerstore=${layerStore}:ref`];
const RUN = ["--runtime", "runc", "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096", "--network", "none"];
let daemon: ReturnType<typeof spawn> | undefined;
let failed = false;
try {
  step("Building a Debian bookworm minbase root filesystem (mmdebstrap, cached after the first time)");
  const tar = await debianRootfsTar();
  step(`Pushing it to a local registry at ${registry.host} as an ordinary gzip image`);
  const src = await importImage({ registryHost: registry.host, repository: "library/debian", tag: "bookworm", layers: [{ tar }] });
  const compressed = src.layers.reduce((n, l) => n + l.size, 0);
  const lazy = `${registry.host}/lazy/debian:bookworm-esgz`;

  step(`lazypull convert ${src.ref} ${lazy}`);
  const conv = await timed(cli, ["convert", src.ref, lazy], env);
  if (conv.code !== 0) throw new Error("lazypull convert failed");

  step("Baseline: podman pull + podman run of the original image (private, empty store)");
  const exists = await run("podman", [...store, "image", "exists", src.ref], { allowFail: true });
  if (exists.code === 0) throw new Error("the private podman store already holds the image; the baseline would not be a full pull");
  const pull = await timed("podman", [...store, "pull", "--quiet", "--tls-verify=false", src.ref]);
  const prun = await timed("podman", [...store, "run", "--rm", ...RUN, src.ref, "cat", "/etc/os-release"]);
  if (pull.code !== 0 || prun.code !== 0) throw new Error("podman baseline failed");

  step(`lazypull run --rm ${lazy} cat /etc/os-release   (cold cache: nothing of the image is on this host)`);
  const lrun = await timed(cli, ["run", "--rm", "--stats", lazy, "cat", "/etc/os-release"], env);
  if (lrun.code !== 0) throw new Error("lazypull run failed");
  const stats = /fetched ([\d.]+ \w+)/.exec(lrun.stderr)?.[1] ?? "?";

  step(`plain podman run --rm ${lazy} cat /etc/os-release   (through lazypulld's layer store, its own cold cache)`);
  const socket = join(work, "run", "lazypulld.sock");
  await mkdir(join(work, "run"), { mode: 0o700 });
  daemon = spawn(process.execPath, [daemonBin, "--socket", socket, "--root", join(work, "daemon"), "--store", layerStore, "--cache-dir", join(work, "daemon-cache"), "--log-level", "warn"], { stdio: ["ignore", "ignore", "inherit"] });
  for (let i = 0; !(await isDaemonAvailable(socket, 500)); i++) {
    if (daemon.exitCode !== null || i > 300) throw new Error("lazypulld did not start");
    await new Promise((r) => setTimeout(r, 100));
  }
  const arun = await timed("podman", [...alsStore, "run", "--rm", "--tls-verify=false", ...RUN, lazy, "cat", "/etc/os-release"]);
  if (arun.code !== 0) throw new Error("podman run through lazypulld failed");

  const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  step("Result");
  process.stdout.write(
    [
      `image: Debian bookworm minbase, ${(compressed / 1e6).toFixed(1)} MB compressed`,
      `full podman pull + run : ${s(pull.ms + prun.ms)}  (pull ${s(pull.ms)}, run ${s(prun.ms)})`,
      `lazypull run (lazy)    : ${s(lrun.ms)}  fetched ${stats}  (${((pull.ms + prun.ms) / lrun.ms).toFixed(1)}x faster)`,
      `podman run + lazypulld : ${s(arun.ms)}  (plain podman, layers from lazypulld's store; ${((pull.ms + prun.ms) / arun.ms).toFixed(1)}x faster)`,
      "",
    ].join("\n"),
  );
} catch (err) {
  failed = true;
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
} finally {
  for (const st of [store, alsStore]) {
    await run("podman", [...st, "rmi", "--all", "--force"], { allowFail: true });
    await run("podman", [...st, "system", "reset", "--force"], { allowFail: true });
  }
  if (daemon && daemon.exitCode === null) {
    const exited = new Promise((r) => daemon!.once("exit", r));
    daemon.kill("SIGTERM");
    await exited;
  }
  await registry.stop();
  await rm(work, { recursive: true, force: true }).catch(() => undefined);
}
process.exit(failed ? 1 : 0);
