import { chmod, lstat, mkdir, unlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Logger } from "pino";
import { openBlobCache, type BlobCache } from "@lazypull/blob-cache";
import { LoadFollowers } from "./load-followers.js";
import { isDaemonAvailable, type CacheStatus, type Health, type LayerStatus } from "@lazypull/daemon-client";
import { describeError } from "@lazypull/errors";
import { cleanStaleMount, mountLazyFs, type LazyFs } from "@lazypull/fuse-fs";
import { mountsUnder } from "@lazypull/host";
import { mountLayerStore, type LayerStore } from "@lazypull/layer-store";
import { RegistryClient } from "@lazypull/registry-client";
import { cleanCliLeftovers } from "./cli-leftovers.js";
import type { DaemonConfig } from "./config.js";
import { DaemonError } from "./errors.js";
import { ImageStore } from "./images.js";
import { StoreLayers } from "./layer-store.js";
import { renderMetrics, type Family } from "./metrics.js";
import { createServer } from "./server.js";
import { VERSION } from "./version.js";

export interface Daemon {
  readonly config: DaemonConfig;
  readonly mountpoint: string;
  readonly store: ImageStore;
  /** podman's Additional Layer Store, when configured */
  readonly layerStore?: { mountpoint: string; layers: StoreLayers };
  /** stops serving, releases every image, unmounts; safe to call twice */
  close(): Promise<void>;
}

/** The socket's directory must be ours alone: anyone who can connect can mount images as root. */
async function prepareSocketDir(socket: string): Promise<void> {
  const dir = dirname(socket);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const st = await lstat(dir);
  const uid = process.getuid?.() ?? 0;
  if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o077) !== 0) {
    throw new DaemonError(
      "DAEMON_BAD_CONFIG",
      `socket directory ${dir} must be a directory owned by uid ${uid} with mode 0700 (it is mode ${(st.mode & 0o777).toString(8)}, owner ${st.uid}); pick a private directory for --socket`,
      { dir, mode: st.mode & 0o777, uid: st.uid },
    );
  }
}

/** Removes a socket file left by a dead daemon; refuses when a live one answers on it. */
async function removeStaleSocket(socket: string, log: Logger): Promise<void> {
  let st;
  try {
    st = await lstat(socket);
  } catch {
    return;
  }
  if (!st.isSocket()) {
    throw new DaemonError("DAEMON_BAD_CONFIG", `${socket} exists and is not a socket; not removing it`, { socket });
  }
  if (await isDaemonAvailable(socket)) {
    throw new DaemonError("DAEMON_ALREADY_RUNNING", `another lazypulld is answering on ${socket}`, { socket });
  }
  await unlink(socket);
  log.warn({ socket }, "removed stale socket of a previous daemon");
}

/** Detaches every mount under `root` left by a previous (killed) daemon, deepest first. */
async function removeStaleMounts(root: string, log: Logger): Promise<number> {
  const under = (await mountsUnder(root)).map((m) => m.mountPoint);
  let n = 0;
  for (const mnt of under) {
    try {
      if (await cleanStaleMount(mnt, { force: true })) {
        n++;
        log.warn({ mountpoint: mnt }, "removed stale mount of a previous daemon");
      }
    } catch (err) {
      log.error({ err, mountpoint: mnt }, "could not remove stale mount");
      throw err;
    }
  }
  return n;
}

/** Mounts podman's Additional Layer Store at `dir`, answered by the daemon's LazyFs. */
async function startLayerStore(dir: string, usesFile: string, config: DaemonConfig, fs: LazyFs, client: RegistryClient, cache: BlobCache, followers: LoadFollowers, log: Logger) {
  // a killed daemon's store mount answers ENOTCONN (even to mkdir) until fusermount's watchdog detaches
  // it, which may not have happened yet
  await cleanStaleMount(dir);
  await mkdir(dir, { recursive: true });
  const layers = await StoreLayers.open({ fs, client, cache, followers, log: log.child({ component: "layer-store" }), usesFile, idleMs: config.storeIdleMs });
  try {
    const fuse = await mountLayerStore({ mountpoint: dir, backend: layers, logger: log, opTimeoutMs: config.opTimeoutMs });
    return { fuse, layers };
  } catch (err) {
    await layers.close();
    throw err;
  }
}

/** Starts lazypulld: cleans up after a previous instance, mounts the shared LazyFs, serves the API. */
export async function startDaemon(config: DaemonConfig, log: Logger): Promise<Daemon> {
  const dlog = log.child({ component: "daemon" });
  await prepareSocketDir(config.socket);
  await removeStaleSocket(config.socket, dlog);
  await mkdir(config.root, { recursive: true, mode: 0o700 });
  await chmod(config.root, 0o700);
  const mountpoint = join(config.root, "layers");
  await removeStaleMounts(config.root, dlog);
  await cleanCliLeftovers(dlog);
  await mkdir(mountpoint, { recursive: true });

  const cacheLog = log.child({ component: "cache" });
  const cache = await openBlobCache({
    dir: config.cacheDir,
    ...(config.cacheMaxBytes !== undefined ? { maxBytes: config.cacheMaxBytes } : {}),
    // the mount's LRU above it already holds inflated chunks: a second in-memory copy would double the bytes
    memoryBytes: 0,
    onCorrupt: (err) => cacheLog.error({ err, ...err.context }, "corrupt cache entry dropped"),
  });
  const client = new RegistryClient({
    insecureRegistries: config.insecureRegistries,
    ...(config.registriesConf !== undefined ? { registriesConf: config.registriesConf } : {}),
    userAgent: `lazypulld/${VERSION}`,
  });
  // registries.conf is read now, not on the first acquire, whose first request would wait for it
  client.prepare();
  const closeBacking = async () => {
    await cache.close().catch(() => undefined);
    await client.close().catch(() => undefined);
  };

  const followers = new LoadFollowers();
  let fs;
  try {
    fs = await mountLazyFs({
      mountpoint,
      source: client,
      cache,
      prefetch: config.prefetch,
      allowUnverified: config.allowUnverified,
      opTimeoutMs: config.opTimeoutMs,
      ...(config.backgroundSilenceMs !== undefined ? { backgroundSilenceMs: config.backgroundSilenceMs } : {}),
      memoryBytes: config.cacheMemoryBytes,
      logger: log,
      // programs and libraries containers open: their own libraries are fetched ahead of the loader
      onFirstRead: (layer, path) => followers.opened(layer, path),
    });
  } catch (err) {
    await closeBacking();
    throw err;
  }
  const lazyFs = fs;
  const store = new ImageStore(lazyFs, client, log.child({ component: "images" }), cache, followers);
  let layerStore: { fuse: LayerStore; layers: StoreLayers } | undefined;
  if (config.store !== false) {
    try {
      layerStore = await startLayerStore(config.store, join(config.root, "store-uses.json"), config, lazyFs, client, cache, followers, log);
    } catch (err) {
      await lazyFs.close().catch(() => undefined);
      await closeBacking();
      throw err;
    }
  }
  const started = Date.now();
  let expired = 0;

  const health = (): Health => ({
    status: "ok",
    pid: process.pid,
    version: VERSION,
    uptimeSeconds: Math.round((Date.now() - started) / 1000),
    images: store.list().length,
    layers: lazyFs.progress().length,
    fuseMountpoint: mountpoint,
    ...(layerStore ? { layerStore: layerStore.fuse.mountpoint } : {}),
    memory: (({ rss, heapUsed, heapTotal, external, arrayBuffers }) => ({ rss, heapUsed, heapTotal, external, arrayBuffers }))(process.memoryUsage()),
  });

  const cacheStatus = async (): Promise<CacheStatus> => {
    const [u, s] = [await cache.usage(), cache.stats()];
    return { ...u, hits: s.hits, misses: s.misses, evictions: s.evictions };
  };

  /** every served layer: leases using it (lazypull run/mount) and podman's use through the store */
  const layerStatus = (): LayerStatus[] => {
    const byBlob = new Map<string, { references: string[]; uses: number }>();
    for (const s of layerStore?.layers.status() ?? []) {
      const b = byBlob.get(s.blobDigest) ?? { references: [], uses: 0 };
      if (!b.references.includes(s.reference)) b.references.push(s.reference);
      b.uses += s.uses;
      byBlob.set(s.blobDigest, b);
    }
    return store.layerStatus().map((l) => {
      const b = byBlob.get(l.digest);
      const hosts = client.bytesByHost(l.digest);
      return { ...l, ...(b ? { store: b } : {}), ...(Object.keys(hosts).length ? { hosts } : {}) };
    });
  };

  const metrics = (): string => {
    const layers = layerStatus();
    const reg = client.stats();
    const cs = cache.stats();
    const perLayer = (name: string, help: string, type: Family["type"], pick: (l: (typeof layers)[number]) => number): Family => ({
      name,
      help,
      type,
      samples: layers.map((l) => ({ labels: { digest: l.digest }, value: pick(l) })),
    });
    return renderMetrics([
      { name: "lazypull_images", help: "Image leases held.", type: "gauge", samples: [{ value: store.list().length }] },
      { name: "lazypull_layers", help: "Layers served by the daemon's FUSE mount.", type: "gauge", samples: [{ value: layers.length }] },
      { name: "lazypull_lease_expirations_total", help: "Leases ended because their owner process died.", type: "counter", samples: [{ value: expired }] },
      perLayer("lazypull_layer_bytes_fetched_total", "Compressed bytes fetched for a layer.", "counter", (l) => l.bytesFetched),
      perLayer("lazypull_layer_bytes", "Compressed size of a layer blob.", "gauge", (l) => l.bytesTotal),
      perLayer("lazypull_layer_requests_total", "Range requests made for a layer.", "counter", (l) => l.requests),
      perLayer("lazypull_layer_errors_total", "Failed fetches for a layer.", "counter", (l) => l.errors),
      perLayer("lazypull_layer_images", "Image leases using a layer.", "gauge", (l) => l.images.length),
      perLayer("lazypull_layer_store_uses", "podman layers using a layer through the Additional Layer Store.", "gauge", (l) => l.store?.uses ?? 0),
      {
        name: "lazypull_layer_state",
        help: "Current state of a layer (1 for the state it is in).",
        type: "gauge",
        samples: layers.map((l) => ({ labels: { digest: l.digest, state: l.state }, value: 1 })),
      },
      { name: "lazypull_registry_requests_total", help: "HTTP requests to registries, retries included.", type: "counter", samples: [{ value: reg.requests }] },
      { name: "lazypull_registry_bytes_received_total", help: "Response body bytes from registries.", type: "counter", samples: [{ value: reg.bytesReceived }] },
      {
        name: "lazypull_registry_host_bytes_received_total",
        help: "Response body bytes per registry or mirror host (registries.conf mirrors included).",
        type: "counter",
        samples: Object.entries(reg.hosts).map(([host, h]) => ({ labels: { host }, value: h.bytesReceived })),
      },
      { name: "lazypull_registry_mirror_fallbacks_total", help: "Calls a mirror failed and the next source answered.", type: "counter", samples: [{ value: reg.mirrorFallbacks }] },
      { name: "lazypull_registry_retries_total", help: "Retried registry requests.", type: "counter", samples: [{ value: reg.retries }] },
      { name: "lazypull_cache_hits_total", help: "Chunk cache hits.", type: "counter", samples: [{ value: cs.hits }] },
      { name: "lazypull_cache_misses_total", help: "Chunk cache misses.", type: "counter", samples: [{ value: cs.misses }] },
      { name: "lazypull_cache_evictions_total", help: "Chunk cache evictions.", type: "counter", samples: [{ value: cs.evictions }] },
      { name: "lazypull_cache_bytes", help: "Bytes in the chunk cache on disk.", type: "gauge", samples: [{ value: cs.bytes }] },
      { name: "lazypull_cache_max_bytes", help: "Chunk cache cap.", type: "gauge", samples: [{ value: cs.maxBytes }] },
      { name: "process_resident_memory_bytes", help: "Resident memory size in bytes.", type: "gauge", samples: [{ value: process.memoryUsage.rss() }] },
      { name: "process_start_time_seconds", help: "Start time of the process since the epoch in seconds.", type: "gauge", samples: [{ value: Math.round(started / 1000) }] },
    ]);
  };

  const server = createServer({ store, layers: layerStatus, log: log.child({ component: "http" }), health, cache: cacheStatus, metrics });
  try {
    await server.listen({ path: config.socket });
    await chmod(config.socket, 0o600);
  } catch (err) {
    await layerStore?.fuse.close().catch(() => undefined);
    await layerStore?.layers.close().catch(() => undefined);
    await lazyFs.close().catch(() => undefined);
    await closeBacking();
    throw err;
  }

  const sweeper = setInterval(() => {
    expired += store.sweepDeadOwners();
  }, config.leaseCheckIntervalMs);
  sweeper.unref();

  dlog.info({ socket: config.socket, mountpoint, cacheDir: config.cacheDir, prefetch: config.prefetch, version: VERSION }, "lazypulld serving");

  let closing: Promise<void> | undefined;
  return {
    config,
    mountpoint,
    store,
    ...(layerStore ? { layerStore: { mountpoint: layerStore.fuse.mountpoint, layers: layerStore.layers } } : {}),
    close() {
      closing ??= (async () => {
        clearInterval(sweeper);
        await server.close().catch((err: unknown) => dlog.error({ err }, "closing the API server failed"));
        await unlink(config.socket).catch(() => undefined);
        // the store first: a lookup arriving now would otherwise open a layer on a closing mount
        await layerStore?.fuse.close().catch((err: unknown) => dlog.error({ err }, "unmounting the layer store failed"));
        await layerStore?.layers.close();
        store.releaseAll();
        try {
          await lazyFs.close();
        } catch (err) {
          // something (a container's overlay) still holds the mount: detach it lazily rather than leave it
          dlog.warn({ err: describeError(err), mountpoint }, "unmount busy; detaching lazily");
          await cleanStaleMount(mountpoint, { force: true });
        }
        await closeBacking();
        dlog.info("lazypulld stopped");
      })();
      return closing;
    },
  };
}
