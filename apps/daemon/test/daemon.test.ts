import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { acquireImageLayersFromDaemon, DaemonClient, type ImageLayers, type LayerStatus } from "@lazypull/daemon-client";
import { cleanStaleMount } from "@lazypull/fuse-fs";
import { isMountPoint } from "@lazypull/host";
import { pushLyingTocDigest, runCli, runSource, spawnDaemon, startRegistry, type DaemonProcess, type RegistryProcess } from "@lazypull/testkit";
import { buildSmallImage, mountsUnder, type SmallImage } from "./helpers.js";

let work: string;
let registry: RegistryProcess;
let image: SmallImage;
let socket: string;
let root: string;
let config: string;
let daemon: DaemonProcess | undefined;
let client: DaemonClient;
const extraChildren: Array<{ kill(sig: NodeJS.Signals): boolean }> = [];

/** Reads every file of the image through a lease's layer dirs (layer k is lowerDirs[n-1-k]). */
async function readAll(lease: ImageLayers): Promise<void> {
  const n = lease.lowerDirs.length;
  await Promise.all(
    image.files.flatMap((layer, k) =>
      [...layer].map(async ([path, want]) => {
        const got = await readFile(join(lease.lowerDirs[n - 1 - k]!, path));
        if (!got.equals(want)) throw new Error(`wrong bytes for ${path} in layer ${k}`);
      }),
    ),
  );
}

const counters = (layers: LayerStatus[]) =>
  layers.map((l) => ({ digest: l.digest, requests: l.requests, bytesFetched: l.bytesFetched, errors: l.errors })).sort((a, b) => a.digest.localeCompare(b.digest));

async function waitFor(what: string, cond: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A raw request, to send what the typed client never would. */
async function raw(method: "GET" | "POST" | "DELETE", path: string, body?: string, contentType = "application/json") {
  const agent = new Agent({ connect: { socketPath: socket } });
  try {
    const res = await request(`http://lazypulld${path}`, { method, dispatcher: agent, ...(body === undefined ? {} : { body, headers: { "content-type": contentType } }) });
    const text = await res.body.text();
    return { status: res.statusCode, body: text ? (JSON.parse(text) as unknown) : undefined };
  } finally {
    await agent.close();
  }
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "lazypull-daemon-test-"));
  registry = await startRegistry();
  image = await buildSmallImage(join(work, "image"), registry.host);
  await mkdir(join(work, "run"), { mode: 0o700 });
  socket = join(work, "run", "lazypulld.sock");
  root = join(work, "root");
  config = join(work, "lazypulld.json");
  // prefetch "none": every byte fetched is one a reader asked for, so the counters show sharing exactly
  await writeFile(config, JSON.stringify({ cacheDir: join(work, "cache"), prefetch: "none", leaseCheckIntervalMs: 200, logLevel: "info" }));
  daemon = await spawnDaemon({ socket, root, config });
  client = new DaemonClient({ socketPath: socket });
});

afterAll(async () => {
  await client?.close();
  for (const c of extraChildren) c.kill("SIGKILL");
  if (daemon && daemon.child.exitCode === null && daemon.child.signalCode === null) {
    daemon.child.kill("SIGKILL");
    await daemon.exited;
  }
  for (const m of await mountsUnder(work)) await cleanStaleMount(m, { force: true }).catch(() => undefined);
  await registry?.stop();
  await rm(work, { recursive: true, force: true });
});

describe("lazypulld", () => {
  it("should give 10 concurrent acquisitions of one image a single set of layer mounts, fetching each chunk once", async () => {
    const leases = await Promise.all(Array.from({ length: 10 }, () => acquireImageLayersFromDaemon(image.ref, { socketPath: socket })));
    const first = leases[0]!;
    expect(leases.map((l) => l.lowerDirs)).toEqual(Array.from({ length: 10 }, () => first.lowerDirs));
    expect(first.lowerDirs).toHaveLength(2);
    expect(first.fuseMountpoint).toBe(join(root, "layers"));
    expect(first.overlayLowerDirs).toEqual(first.lowerDirs.map((d) => `${d}.overlay`));
    const served = [...first.lowerDirs, ...first.overlayLowerDirs!].map((d) => d.split("/").pop());
    expect((await readdir(first.fuseMountpoint!)).sort()).toEqual(served.sort());

    const layers = await client.layers();
    expect(layers.map((l) => l.images.length)).toEqual([10, 10]);
    const opened = counters(layers); // footer and TOC only: nothing read yet

    // all ten read everything at once, then again: the second round must cost nothing
    await Promise.all(leases.map(readAll));
    const afterFirst = counters(await client.layers());
    expect(afterFirst.every((c, i) => c.requests > opened[i]!.requests)).toBe(true);
    await Promise.all(leases.map(readAll));
    const afterSecond = counters(await client.layers());
    expect(afterSecond).toEqual(afterFirst);

    // each chunk at most once: reads after opening cost at least the (incompressible) file bytes and
    // never more than the whole blob, however many readers there were
    const images = await client.images();
    for (const [k, layer] of image.files.entries()) {
      const digest = images[0]!.layers[k]!.digest;
      const before = opened.find((c) => c.digest === digest)!;
      const after = afterFirst.find((c) => c.digest === digest)!;
      const total = layers.find((l) => l.digest === digest)!.bytesTotal;
      const fileBytes = [...layer.values()].reduce((n, b) => n + b.length, 0);
      const readCost = after.bytesFetched - before.bytesFetched;
      expect({ errors: after.errors, withinBlob: readCost <= total, coversFiles: readCost >= fileBytes }).toEqual({
        errors: 0,
        withinBlob: true,
        coversFiles: true,
      });
    }
    const stats = await first.stats();
    expect({ ...stats, hosts: Object.keys(stats.hosts ?? {}) }).toEqual({
      bytesFetched: afterFirst.reduce((n, c) => n + c.bytesFetched, 0),
      requests: afterFirst.reduce((n, c) => n + c.requests, 0),
      // which registry sent the layers' bytes (each layer's blob, footer and TOC included)
      hosts: [registry.host],
    });
    expect(stats.hosts![registry.host]).toBeGreaterThanOrEqual(stats.bytesFetched);

    // reference counting: layers stay while any lease holds them, go with the last
    await Promise.all(leases.slice(1).map((l) => l.release()));
    expect((await client.layers()).map((l) => l.images.length)).toEqual([1, 1]);
    await readAll(first);
    await first.release();
    expect({ images: await client.images(), layers: await client.layers(), dirs: await readdir(join(root, "layers")) }).toEqual({
      images: [],
      layers: [],
      dirs: [],
    });
  });

  it("should fetch the files a lease's start names before anything reads them, and nothing when the lease asks for no prediction", async () => {
    // an image of its own: the earlier tests have read every file of the shared one into the cache
    const fresh = await buildSmallImage(join(work, "image-predict"), registry.host, 2, 200_000, "predict");
    const [path, bytes] = [...fresh.files[1]!].find(([p]) => p.startsWith("data/"))!;
    // the file as the program: the image has no cat (and files named in argv count only once the program is found)
    const start = { command: [`/${path}`] };
    const fetched = async () => (await client.layers()).reduce((n, l) => n + l.bytesFetched, 0);

    // what the CLI sends for `run --no-predict`: opening the layers is all that is fetched
    const off = await acquireImageLayersFromDaemon(fresh.ref, { socketPath: socket, start, predict: false });
    const opened = await fetched();
    await new Promise((r) => setTimeout(r, 1000));
    expect(await fetched()).toBe(opened);
    await off.release();
    await waitFor("the layers to be let go", async () => (await client.layers()).length === 0);

    // with prediction, the program's bytes arrive with no reader (its 200 KB do not compress)
    const on = await acquireImageLayersFromDaemon(fresh.ref, { socketPath: socket, start });
    try {
      // (the layers' counters start again at zero: they were let go, and their TOCs now come from the cache)
      await waitFor("the predicted file to be fetched", async () => (await fetched()) >= bytes.length);
      const got = await readFile(join(on.lowerDirs[0]!, path));
      expect(got.equals(bytes)).toBe(true);
    } finally {
      await on.release();
    }
  });

  it("should answer an early lease before its layers are open, and say through ready() why one cannot be", async () => {
    const good = await buildSmallImage(join(work, "image-early"), registry.host, 2, 20_000, "early");
    // the same image under another tag, its top layer's TOC digest a lie: that layer can never be opened
    const lying = await pushLyingTocDigest(good.ref, 1, "lying");

    // without early, the lease is refused: every layer is opened before the answer
    await expect(acquireImageLayersFromDaemon(lying, { socketPath: socket, predict: false })).rejects.toMatchObject({ code: "FUSEFS_BAD_LAYER" });
    // early: answered with the layers' directories, then ready() says why
    const early = await acquireImageLayersFromDaemon(lying, { socketPath: socket, predict: false, early: true });
    expect(early.lowerDirs).toHaveLength(2);
    await expect(early.ready).rejects.toMatchObject({ code: "FUSEFS_BAD_LAYER" });
    // the failed lease holds nothing: ending it takes no reference from a lease on the same blobs
    const held = await acquireImageLayersFromDaemon(good.ref, { socketPath: socket, predict: false });
    await early.release();
    expect((await client.layers()).map((l) => l.images.length)).toEqual([1, 1]);
    expect((await readFile(join(held.lowerDirs[1]!, "etc/layer-0"))).toString()).toBe("layer 0\n");
    await held.release();

    // an early lease of a good image: ready() resolves, and its files read as usual
    const ok = await acquireImageLayersFromDaemon(good.ref, { socketPath: socket, predict: false, early: true });
    try {
      await ok.ready;
      expect((await readFile(join(ok.lowerDirs[0]!, "etc/layer-1"))).toString()).toBe("layer 1\n");
    } finally {
      await ok.release();
    }
    await waitFor("the layers to be let go", async () => (await client.layers()).length === 0);
  });

  it("should release an image whose owner process died", async () => {
    const owner = spawn("sleep", ["300"], { stdio: "ignore" });
    extraChildren.push(owner);
    const lease = await client.acquire({ reference: image.ref, pid: owner.pid! });
    expect((await client.images()).map((i) => ({ id: i.id, pid: i.pid }))).toEqual([{ id: lease.id, pid: owner.pid }]);
    owner.kill("SIGKILL");
    await waitFor("the dead owner's lease to end", async () => (await client.images()).length === 0);
    expect(await client.layers()).toEqual([]);
    expect(daemon!.log()).toContain(`owner pid ${owner.pid} exited`);
  });

  it("should answer malformed requests with a 4xx and a clear JSON error, and stay up", async () => {
    const results = await Promise.all([
      raw("POST", "/v1/images", "{not json"),
      raw("POST", "/v1/images", JSON.stringify({ reference: 42 })),
      raw("POST", "/v1/images", JSON.stringify({ reference: image.ref, colour: "blue" })),
      raw("POST", "/v1/images", JSON.stringify({ reference: "UPPER/Case::x" })),
      raw("POST", "/v1/images", JSON.stringify({ reference: image.ref, platform: "linux" })),
      raw("POST", "/v1/images", JSON.stringify({ reference: `${registry.host}/lazy/absent:v1` })),
      raw("DELETE", "/v1/images/no-such-lease"),
      raw("GET", "/v2/whatever"),
      // a lease id longer than the router's parameter limit: Fastify answers before any route
      raw("GET", `/v1/images/${"x".repeat(500)}`),
    ]);
    expect(results.map((r) => r.status)).toEqual([400, 400, 400, 400, 400, 404, 404, 404, 414]);
    // every body has the API's shape, whoever answered
    for (const r of results) expect(Object.keys(r.body as object).sort()).toEqual(expect.arrayContaining(["code", "message"]));
    expect((results[8].body as { code: string }).code).toBe("DAEMON_BAD_REQUEST");
    expect(results.slice(0, 3).concat(results.slice(6, 8)).map((r) => r.body)).toEqual([
      { code: "DAEMON_BAD_REQUEST", message: "Body is not valid JSON but content-type is set to 'application/json'" },
      { code: "DAEMON_BAD_REQUEST", message: "invalid request: body/reference must be string" },
      { code: "DAEMON_BAD_REQUEST", message: "invalid request: body must NOT have additional properties" },
      { code: "DAEMON_IMAGE_NOT_FOUND", message: 'no image lease with id "no-such-lease"', context: { id: "no-such-lease" } },
      { code: "DAEMON_NOT_FOUND", message: "no such endpoint: GET /v2/whatever" },
    ]);
    expect((results[3].body as { code: string }).code).toBe("REFERENCE_INVALID");
    expect((results[4].body as { code: string; message: string }).message).toMatch(/^invalid request: body\/platform must match pattern/);
    expect((results[5].body as { code: string }).code).toBe("REGISTRY_NOT_FOUND");
    const health = await client.health();
    expect({ status: health.status, pid: health.pid, images: health.images }).toEqual({ status: "ok", pid: daemon!.pid, images: 0 });
  });

  it("should show its images and layers through `lazypull status --json`", async () => {
    const lease = await client.acquire({ reference: image.ref });
    try {
      const r = await runCli(["status", "--json"], {
        env: { ...process.env, LAZYPULL_SOCKET: socket },
        allowFail: true,
        timeoutMs: 60_000,
      });
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
      const s = JSON.parse(r.stdout) as { socket: string; health: { pid: number }; images: Array<{ id: string }>; layers: Array<{ digest: string; images: string[] }> };
      expect({ socket: s.socket, pid: s.health.pid, images: s.images.map((i) => i.id), layers: s.layers.map((l) => [l.digest, l.images]).sort() }).toEqual({
        socket,
        pid: daemon!.pid,
        images: [lease.id],
        layers: lease.layers.map((l) => [l.digest, [lease.id]]).sort(),
      });
    } finally {
      await client.release(lease.id);
    }
  });

  it("should serve Prometheus metrics and cache usage", async () => {
    const metrics = await client.metrics();
    expect(metrics).toMatch(/^# HELP lazypull_images Image leases held\.\n# TYPE lazypull_images gauge\nlazypull_images 0\n/);
    expect(metrics).toMatch(/\nprocess_resident_memory_bytes \d+\n/);
    const cache = await client.cache();
    expect({ dir: cache.dir, hasEntries: cache.entries > 0 }).toEqual({ dir: join(work, "cache"), hasEntries: true });
  });

  it("should refuse to start a second daemon on a socket that a live one answers", async () => {
    const r = await runSource("apps/daemon/src/main.ts", ["--socket", socket, "--root", join(work, "root2"), "--config", config], {
      allowFail: true,
      timeoutMs: 60_000,
    });
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 1, stderr: `lazypulld: DAEMON_ALREADY_RUNNING: another lazypulld is answering on ${socket}\n` });
    expect((await client.health()).pid).toBe(daemon!.pid);
  });

  it("should come back after kill -9 with no stale mount, and serve the next acquisition", async () => {
    const lease = await acquireImageLayersFromDaemon(image.ref, { socketPath: socket });
    await readAll(lease);
    daemon!.child.kill("SIGKILL");
    expect(await daemon!.exited).toEqual({ code: null, signal: "SIGKILL" });
    expect((await stat(socket)).isSocket()).toBe(true); // left behind, to be removed at start

    daemon = await spawnDaemon({ socket, root, config });
    await client.close();
    client = new DaemonClient({ socketPath: socket });
    const mountpoint = join(root, "layers");
    expect(await mountsUnder(root)).toEqual([mountpoint]);
    expect(await isMountPoint(mountpoint)).toBe(true);
    const next = await acquireImageLayersFromDaemon(image.ref, { socketPath: socket });
    await readAll(next);
    expect((await client.layers()).map((l) => l.errors)).toEqual([0, 0]);
  });

  it("should unmount everything and exit 0 on SIGTERM", async () => {
    // a lease of its own: this test must not lean on what an earlier one left
    await client.acquire({ reference: image.ref });
    expect((await client.images()).length).toBeGreaterThan(0);
    daemon!.child.kill("SIGTERM");
    expect(await daemon!.exited).toEqual({ code: 0, signal: null });
    expect(await mountsUnder(root)).toEqual([]);
    await expect(stat(socket)).rejects.toMatchObject({ code: "ENOENT" });
  });
});
