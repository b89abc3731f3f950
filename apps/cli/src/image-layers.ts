import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { defaultCacheDir, openBlobCache } from "@lazypull/blob-cache";
import { acquireImageLayersFromDaemon, isDaemonAvailable, type ImageLayers } from "@lazypull/daemon-client";
import { loadFuseNative, mountLazyFs, type LayerDirs, type PrefetchPolicy } from "@lazypull/fuse-fs";
import type { StateDir } from "@lazypull/overlay-launcher";
import { parseReference } from "@lazypull/registry-client";
import { createRegistryClient } from "./registry.js";

// One shape for layers served by the daemon or by this process, so run/mount use either.
export type { ImageLayers };

export interface AcquireOptions {
  platform?: string;
  /** the state dir of the container or mount: the FUSE mount goes inside it and is recorded there */
  state: StateDir;
  prefetch?: PrefetchPolicy;
  allowUnverified?: boolean;
  accessLogPath?: string;
}

/**
 * The in-process way to serve an image: resolve it, mount one lazy FUSE filesystem inside the
 * container's state dir (recorded first, so a killed lazypull's leftovers are found and unmounted),
 * and add every layer to it. This process must keep running (and its event loop free) while the
 * layers are in use.
 *
 * Pipelined, because every step waits on something else: the cache opens and the FUSE mount comes up
 * while the manifest is fetched, and each layer's footer and TOC are fetched while the config is.
 */
export async function acquireImageLayers(reference: string, opts: AcquireOptions): Promise<ImageLayers> {
  // the FUSE addon loads while the manifest and config are on their way
  loadFuseNative().catch(() => undefined);
  const ref = parseReference(reference);
  const client = createRegistryClient({ platform: opts.platform });
  const caching = openBlobCache({ dir: defaultCacheDir() });
  const mountpoint = join(opts.state.dir, "layers");
  const mounting = (async () => {
    const cache = await caching;
    await mkdir(mountpoint, { recursive: true });
    await opts.state.recordMount(mountpoint, "fuse");
    return mountLazyFs({
      mountpoint,
      source: client,
      cache,
      prefetch: opts.prefetch ?? "all",
      allowUnverified: opts.allowUnverified,
      accessLogPath: opts.accessLogPath,
    });
  })();
  let adding: Promise<LayerDirs[]> | undefined;
  const resolving = client.resolve(ref, {
    platform: opts.platform,
    onManifest: (m) => {
      adding = mounting.then((fs) => Promise.all(m.manifest.layers.map((descriptor) => fs.addLayer({ ref: m.ref, descriptor }))));
      adding.catch(() => undefined); // observed below; a rejection before that is not unhandled
    },
  });
  const [resolved, fs, layers] = await Promise.allSettled([resolving, mounting, resolving.then(() => adding!)]);
  if (resolved.status === "rejected" || fs.status === "rejected" || layers.status === "rejected") {
    if (fs.status === "fulfilled") await fs.value.close().catch(() => undefined);
    await (await caching.catch(() => undefined))?.close();
    await client.close();
    const failed = [resolved, fs, layers].find((r): r is PromiseRejectedResult => r.status === "rejected")!;
    throw failed.reason;
  }
  const cache = await caching;
  const dirs = layers.value;
  let released = false;
  return {
    reference: ref.toString(),
    manifestDigest: resolved.value.manifestDigest,
    config: resolved.value.config,
    lowerDirs: dirs.map((d) => d.dir).reverse(),
    overlayLowerDirs: dirs.map((d) => d.overlayDir).reverse(),
    fuseMountpoint: mountpoint,
    async stats() {
      const s = client.stats();
      return { bytesFetched: s.bytesReceived, requests: s.requests, fuseOps: fs.value.opCount };
    },
    async release() {
      if (released) return;
      released = true;
      try {
        await fs.value.close();
      } finally {
        await cache.close();
        await client.close();
      }
    },
  };
}

/**
 * The layers from `lazypulld` when its socket answers (`LAZYPULL_SOCKET` overrides the path): shared
 * with every other container on the host and fetched once; the lease ends when this process does
 * (or on release). Otherwise in-process.
 * With the daemon, its own prefetch policy applies and accesses are not recorded here.
 */
export async function acquireImageLayersAnywhere(reference: string, opts: AcquireOptions): Promise<ImageLayers & { via: "daemon" | "process" }> {
  if (!opts.accessLogPath && (await isDaemonAvailable())) {
    return { ...(await acquireImageLayersFromDaemon(reference, { platform: opts.platform })), via: "daemon" };
  }
  return { ...(await acquireImageLayers(reference, opts)), via: "process" };
}
