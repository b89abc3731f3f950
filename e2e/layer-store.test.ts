import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { DaemonClient, type LayerStatus } from "@lazypull/daemon-client";
import { debianRootfsTar, importImage, run, spawnDaemon, type DaemonProcess } from "@lazypull/testkit";
import { lazypull, mountsUnder } from "./helpers.js";

/**
 * Plain `podman` on lazypulld's Additional Layer Store (issue 14): a real daemon serving the store,
 * a private podman root configured for it, the suite's converted Debian image pulled and run by podman
 * itself — no `lazypull run` anywhere.
 */
const lazyRef = inject("lazyRef");
const sourceRef = inject("sourceRef");
const registryHost = inject("registryHost");
const convertEnv = inject("convertEnv");

let work: string;
let store: string;
let socket: string;
let root: string;
let daemon: DaemonProcess;
let client: DaemonClient;
let osRelease: string;
let debianVersion: string;
// an image on the Debian base with whiteouts and an opaque directory, converted like lazyRef
let whRef: string;

// the host needs these for any podman run (see overlay-launcher's defaults.ts)
const RUN_FLAGS = ["--runtime", "runc", "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096", "--network", "host", "--tls-verify=false"];
const podmanArgs = () => [
  "--root",
  join(work, "podman", "root"),
  "--runroot",
  join(work, "podman", "runroot"),
  "--storage-driver",
  "overlay",
  "--storage-opt",
  `overlay.additionallayerstore=${store}:ref`,
];
const podman = (args: string[], opts: { allowFail?: boolean; timeoutMs?: number } = {}) =>
  run("podman", [...podmanArgs(), ...args], { timeoutMs: 300_000, ...opts });

async function startDaemon(): Promise<void> {
  // prefetch none: every byte fetched is one the container read, so the byte count means something
  const config = join(work, "lazypulld.json");
  await writeFile(config, JSON.stringify({ cacheDir: join(work, "cache"), prefetch: "none", logLevel: "info" }));
  daemon = await spawnDaemon({ socket, root, config, store });
  client = new DaemonClient({ socketPath: socket });
}

async function layers(): Promise<LayerStatus[]> {
  return client.layers();
}

/** The daemon's layers as podman's use of them, polled until `want` holds (podman notifies asynchronously of nothing, but be fair to slow hosts). */
async function storeUses(want: (ls: LayerStatus[]) => boolean, timeoutMs = 10_000): Promise<LayerStatus[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ls = await layers();
    if (want(ls) || Date.now() > deadline) return ls;
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "lazypull-e2e-store-"));
  store = join(work, "store");
  root = join(work, "root");
  await mkdir(join(work, "run"), { recursive: true, mode: 0o700 });
  socket = join(work, "run", "lazypulld.sock");
  const tar = await debianRootfsTar();
  osRelease = (await run("tar", ["-xOf", tar, "./usr/lib/os-release"])).stdout;
  debianVersion = (await run("tar", ["-xOf", tar, "./etc/debian_version"])).stdout;

  // Top layer: deletes /etc/issue (whiteout), replaces /usr/share/doc wholesale (opaque), adds a file.
  const top = join(work, "top");
  await mkdir(join(top, "etc"), { recursive: true });
  await mkdir(join(top, "usr", "share", "doc"), { recursive: true });
  await writeFile(join(top, "etc", ".wh.issue"), "");
  await writeFile(join(top, "usr", "share", "doc", ".wh..wh..opq"), "");
  await writeFile(join(top, "usr", "share", "doc", "only-this"), "the opaque directory's one file\n");
  await writeFile(join(top, "hello.txt"), "hello from the top layer\n");
  await run("tar", ["--numeric-owner", "--owner=0", "--group=0", "-C", top, "-cf", join(work, "top.tar"), "."]);
  const src = await importImage({ registryHost, repository: "src/debian-wh", tag: "v1", layers: [{ tar }, { tar: join(work, "top.tar") }] });
  whRef = `${registryHost}/lazy/debian-wh:v1`;
  // the suite's convert env: the Debian base layer is reused (mounted from lazy/debian), not converted again
  await lazypull(["convert", src.ref, whRef, "--json"], { env: convertEnv, timeoutMs: 600_000 });

  await startDaemon();
}, 900_000);

afterAll(async () => {
  await podman(["rm", "--all", "--force", "--time", "0"], { allowFail: true });
  await podman(["rmi", "--all", "--force"], { allowFail: true });
  if (daemon && daemon.child.exitCode === null && daemon.child.signalCode === null) {
    daemon.child.kill("SIGTERM");
    await daemon.exited;
  }
  // podman keeps its store's own bind mount (`<root>/overlay`) after the images are gone
  const podmanDir = join(work, "podman");
  const left = (await mountsUnder(work)).filter((m) => !m.split(" ")[1]!.startsWith(podmanDir));
  for (const m of (await mountsUnder(podmanDir)).reverse()) await run("umount", ["-l", m.split(" ")[1]!], { allowFail: true });
  await rm(work, { recursive: true, force: true });
  expect(left).toEqual([]);
});

describe("plain podman through lazypulld's Additional Layer Store", () => {
  it("should pull and run a converted image without downloading its layers, and list it", async () => {
    const ran = await podman(["run", "--rm", ...RUN_FLAGS, lazyRef, "cat", "/etc/os-release"]);
    expect(ran.stdout).toBe(osRelease);

    const ls = await layers();
    const manifest = JSON.parse((await run("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${lazyRef}`])).stdout) as { layers: { digest: string; size: number }[] };
    expect(ls.map((l) => l.digest).sort()).toEqual(manifest.layers.map((l) => l.digest).sort());
    const fetched = ls.reduce((n, l) => n + l.bytesFetched, 0);
    const total = manifest.layers.reduce((n, l) => n + l.size, 0);
    expect(fetched).toBeGreaterThan(0);
    expect(fetched / total).toBeLessThan(0.15);
    // podman holds each layer once (the layer it made from it); the pull's own lookups were given back
    for (const l of ls) expect(l.store).toEqual({ references: [lazyRef], uses: 1 });

    const images = (await podman(["images", "--format", "{{.Repository}}:{{.Tag}}"])).stdout.split("\n");
    expect(images).toContain(lazyRef);
  });

  it("should serve podman run -d, exec and stop", async () => {
    await podman(["run", "-d", "--name", "svc", ...RUN_FLAGS, lazyRef, "sleep", "600"]);
    const exec = await podman(["exec", "svc", "cat", "/etc/debian_version"]);
    expect(exec.stdout).toBe(debianVersion);
    await podman(["stop", "--time", "0", "svc"]);
    const state = (await podman(["inspect", "--format", "{{.State.Status}}", "svc"])).stdout.trim();
    expect(state).toBe("exited");
    await podman(["rm", "svc"]);
  });

  it("should apply whiteouts and an opaque directory through podman's own overlay driver, sharing the base layer", async () => {
    const script = "test ! -e /etc/issue && echo issue-gone; ls -A /usr/share/doc; cat /hello.txt; test -x /bin/sh && echo base-ok";
    const ran = await podman(["run", "--rm", ...RUN_FLAGS, whRef, "sh", "-c", script]);
    expect(ran.stdout).toBe("issue-gone\nonly-this\nhello from the top layer\nbase-ok\n");
    const ls = await layers();
    // one served base layer, used by both images' podman layers... or by one podman layer, when
    // podman recognised the base it already had: either way, served once and looked up through the store
    const base = (JSON.parse((await run("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${lazyRef}`])).stdout) as { layers: { digest: string }[] }).layers[0]!.digest;
    expect(ls.filter((l) => l.digest === base)).toHaveLength(1);
    expect(ls).toHaveLength(2);
    const top = ls.find((l) => l.digest !== base)!;
    expect(top.store).toEqual({ references: [whRef], uses: 1 });
  });

  it("should be set up for podman by `lazypull podman setup`, shown in `lazypull status`, and removed by `lazypull podman remove`", async () => {
    // a second podman store that knows the layer store only from its storage.conf (podman drops the
    // file's options when --root is given, so the roots are in the file, as on a host)
    const conf = join(work, "storage.conf");
    const mine = ["[storage]", 'driver = "overlay"', `graphroot = "${join(work, "podman2", "root")}"`, `runroot = "${join(work, "podman2", "runroot")}"`, ""].join("\n");
    await writeFile(conf, mine);
    const setup = JSON.parse((await lazypull(["podman", "setup", "--store", store, "--storage-conf", conf, "--json"])).stdout) as { changed: boolean; created: boolean };
    expect(setup).toMatchObject({ changed: true, created: false });
    const env = { ...process.env, CONTAINERS_STORAGE_CONF: conf };
    const opts = (await run("podman", ["info", "--format", "{{.Store.GraphRoot}} {{.Store.GraphOptions}}"], { env })).stdout;
    expect(opts).toContain(`${join(work, "podman2", "root")} map[overlay.additionallayerstore:${store}:ref]`);
    const ran = await run("podman", ["run", "--rm", ...RUN_FLAGS, lazyRef, "cat", "/etc/debian_version"], { env, timeoutMs: 300_000 });
    expect(ran.stdout).toBe(debianVersion);
    // two podman roots now hold the Debian layer: both counted
    const base = (await layers()).find((l) => l.store?.references.includes(lazyRef));
    expect(base?.store?.uses).toBe(2);
    const status = (await lazypull(["status"], { env: { LAZYPULL_SOCKET: socket } })).stdout;
    expect(status).toContain(`podman layer store ${store}`);
    expect(status).toMatch(/IMAGES\s+PODMAN\n(.*\n)*sha256:\S+\s.*\s2\n/);
    await run("podman", ["rmi", "--all"], { env });
    expect((await storeUses((ls) => ls.every((l) => (l.store?.uses ?? 0) <= 1))).find((l) => l.digest === base!.digest)?.store?.uses).toBe(1);
    await run("podman", ["system", "reset", "--force"], { env, allowFail: true });
    const removed = JSON.parse((await lazypull(["podman", "remove", "--storage-conf", conf, "--json"])).stdout) as { changed: boolean; deleted: boolean };
    expect(removed).toMatchObject({ changed: true, deleted: false });
    expect(await readFile(conf, "utf8")).toBe(mine);
  });

  it("should pull and run an image that is not eStargz the ordinary way", async () => {
    const before = (await layers()).map((l) => l.digest);
    const ran = await podman(["run", "--rm", ...RUN_FLAGS, sourceRef, "cat", "/etc/os-release"]);
    expect(ran.stdout).toBe(osRelease);
    expect((await layers()).map((l) => l.digest)).toEqual(before);
  });

  it("should give the layers back when podman removes the images", async () => {
    await podman(["rmi", whRef, lazyRef, sourceRef]);
    const ls = await storeUses((l) => l.every((x) => (x.store?.uses ?? 0) === 0));
    expect(ls.map((l) => l.store?.uses ?? 0)).toEqual(ls.map(() => 0));
    const saved = JSON.parse(await readFile(join(root, "store-uses.json"), "utf8")) as unknown[];
    expect(saved).toEqual([]);
  });

  it("should survive kill -9 of lazypulld: the running container fails reads with an error, never wrong bytes, and works after a restart", async () => {
    await podman(["run", "-d", "--name", "victim", ...RUN_FLAGS, lazyRef, "sh", "-c", "echo up; exec sleep 600"]);
    // sleep must have loaded: a process still paging its binary in from a dead FUSE mount gets SIGBUS
    for (let i = 0; i < 50 && !(await podman(["logs", "victim"])).stdout.includes("up"); i++) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 1000));
    daemon.child.kill("SIGKILL");
    await daemon.exited;
    // the container itself keeps running: what it already holds in memory needs no FUSE
    expect((await podman(["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "victim"])).stdout.trim()).toBe("running 0");
    // a file nothing has read yet: its bytes are not in the page cache
    const during = await podman(["exec", "victim", "cat", "/usr/share/common-licenses/GPL-3"], { allowFail: true });
    if (during.code === 0) {
      const want = (await run("tar", ["-xOf", await debianRootfsTar(), "./usr/share/common-licenses/GPL-3"])).stdout;
      expect(during.stdout).toBe(want);
    } else {
      // the lower directories are on a FUSE mount whose server died: lookups fail with ENOTCONN,
      // which runc reports as a missing executable and cat as an I/O or connection error; an inode
      // overlayfs held from before fails with ESTALE (runc, in Go: "stale NFS file handle", seen once
      // in CI on `stat /dev/null`)
      expect(during.stderr + during.stdout).toMatch(/Transport endpoint is not connected|Input\/output error|executable file not found|[Ss]tale (NFS )?file handle/);
    }
    await startDaemon();
    // stop, then start (a `podman restart` here once failed to find sh on the new daemon, cause not
    // yet understood): the new overlay finds its lower directories through the restarted store
    await podman(["stop", "--time", "0", "victim"]);
    await podman(["start", "victim"]);
    const after = await podman(["exec", "victim", "cat", "/etc/debian_version"]);
    expect(after.stdout).toBe(debianVersion);
    // podman's use count survived the kill: the restarted daemon knows podman holds the layer
    const ls = await layers();
    expect(ls.length).toBeGreaterThan(0);
    for (const l of ls) expect(l.store?.uses).toBe(1);
    await podman(["rm", "--force", "--time", "0", "victim"]);
  });
});
