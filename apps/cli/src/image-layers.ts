import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { defaultCacheDir, openBlobCache } from "@lazypull/blob-cache";
import { acquireImageLayersFromDaemon, isDaemonAvailable } from "@lazypull/daemon-client";
import { layerDirs, mountLazyFs, prefetchToc, type LayerDirs, type PrefetchPolicy } from "@lazypull/fuse-fs";
import { loadPredictorFor, lowerDirsOf, resolveAndStartLayers, type ImageLayers, type LoadPredictor, type StartCommand } from "@lazypull/image";
import type { ImageManifest, ImageReference, RegistryClient, ResolvedImage } from "@lazypull/registry-client";
import type { StateDir } from "@lazypull/overlay-launcher";
import { createRegistryClient, registryFlagsGiven } from "./registry.js";
import { CliError } from "./errors.js";
import { loadFuseNativeAfterFirstRequest } from "./fuse-addon.js";

// One shape for layers served by the daemon or by this process, so run/mount use either.
export type { ImageLayers } from "@lazypull/image";

export interface AcquireOptions {
  platform?: string;
  /**
   * the state dir of the container or mount: the FUSE mount goes inside it and is recorded there. It
   * may still be being made: the registry requests go out meanwhile, the mount waits for it.
   */
  state: StateDir | Promise<StateDir>;
  prefetch?: PrefetchPolicy;
  allowUnverified?: boolean;
  accessLogPath?: string;
  /**
   * how the container will be started: what that start reads first is fetched as soon as the layers
   * are served (without it, nothing is predicted in this process; lazypulld predicts the image's own command)
   */
  start?: StartCommand;
  /** false: nothing is predicted, not even by lazypulld (which otherwise predicts the image's own command) */
  predict?: boolean;
  /**
   * hand the layers out once the manifest and config are in, before their TOCs are read: an overlay and
   * the container can then start meanwhile (the mount waits below a layer until it is open), and the
   * result's `ready` says when they are open or why one cannot be (lazypulld's too, with `GET
   * /v1/images/:id/ready`).
   */
  early?: boolean;
  /**
   * the registry client to serve the image with, made (and `prepare()`d) early by the caller; it is closed
   * with the layers, or at once when lazypulld serves them. Default: one made here.
   */
  client?: RegistryClient;
}

/**
 * The in-process way to serve an image: resolve it, mount one lazy FUSE filesystem inside the
 * container's state dir (recorded first, so a killed lazypull's leftovers are found and unmounted),
 * and add every layer to it. This process must keep running (and its event loop free) while the
 * layers are in use.
 */
export async function acquireImageLayers(reference: string, opts: AcquireOptions): Promise<ImageLayers> {
  // the FUSE addon loads while the manifest and config are on their way
  const firstRequest = loadFuseNativeAfterFirstRequest();
  const client = opts.client ?? createRegistryClient({ platform: opts.platform });
  // no memory tier: the mount's own LRU holds the inflated chunks, and a second copy of each costs time
  const cache = await openBlobCache({ dir: defaultCacheDir(), memoryBytes: 0 });
  const closeAll = async () => {
    await cache.close();
    await client.close();
  };
  let predictor: LoadPredictor | undefined;
  // the mount needs no manifest: it is made while the manifest is on its way (after the request is
  // sent, for loading the addon blocks this thread)
  const mounting = (async () => {
    const state = await opts.state;
    const mountpoint = join(state.dir, "layers");
    await mkdir(mountpoint, { recursive: true });
    await state.recordMount(mountpoint, "fuse");
    await firstRequest.sent;
    return mountLazyFs({
      mountpoint,
      source: client,
      cache,
      prefetch: opts.prefetch ?? "all",
      allowUnverified: opts.allowUnverified,
      accessLogPath: opts.accessLogPath,
      // a program or library the container opens: its own libraries are fetched before the loader asks
      onFirstRead: (_layer, path) => void predictor?.opened(path),
    });
  })();
  mounting.catch(() => undefined);
  try {
    let resolved: ResolvedImage;
    let adding: Promise<LayerDirs[]>;
    try {
      // the TOCs are asked for the moment the manifest names them, not once the mount is made
      const onManifest = (ref: ImageReference, manifest: ImageManifest) => {
        firstRequest.cancel();
        for (const descriptor of manifest.layers) prefetchToc({ ref, descriptor }, client, cache);
      };
      // a string, so a short name goes through registries.conf's aliases and search registries; manifests
      // by digest and the config come from the cache on a warm host: one request by tag, none by digest
      ({ resolved, adding } = await resolveAndStartLayers(client, reference, mounting, { platform: opts.platform, cache, onManifest }));
      if (!opts.early) await adding;
    } catch (err) {
      firstRequest.cancel();
      await (await mounting.catch(() => undefined))?.close();
      throw err;
    }
    const fs = await mounting;
    const dirs = resolved.manifest.layers.map((d) => layerDirs(fs.mountpoint, d.digest));
    // not awaited: podman prepares the container meanwhile, and a read of a file still on its way waits for it
    const { start } = opts;
    const prediction = start
      ? adding
          .then(() => {
            predictor = loadPredictorFor(fs, resolved.manifest.layers, resolved.config, start);
            return predictor?.start();
          })
          .catch(() => undefined)
      : undefined;
    let released = false;
    return {
      reference: resolved.ref.toString(),
      manifestDigest: resolved.manifestDigest,
      config: resolved.config,
      ...lowerDirsOf(dirs),
      fuseMountpoint: fs.mountpoint,
      ...(prediction ? { prediction } : {}),
      ...(opts.early ? { ready: adding.then(() => undefined) } : {}),
      async stats() {
        const s = client.stats();
        const hosts = Object.fromEntries(Object.entries(s.hosts).map(([h, v]) => [h, v.bytesReceived]));
        return { bytesFetched: s.bytesReceived, requests: s.requests, fuseOps: fs.opCount, hosts };
      },
      async release() {
        if (released) return;
        released = true;
        try {
          await fs.close();
        } finally {
          await closeAll();
        }
      },
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/**
 * The layers from `lazypulld` when its socket answers (`LAZYPULL_SOCKET` overrides the path): shared
 * with every other container on the host and fetched once; the lease ends when this process does
 * (or on release). Otherwise in-process.
 * With the daemon, its own prefetch policy applies and accesses are not recorded here.
 */
export async function acquireImageLayersAnywhere(reference: string, opts: AcquireOptions): Promise<ImageLayers & { via: "daemon" | "process" }> {
  // --tls-verify=false and --cert-dir are this invocation's: lazypulld speaks to registries as its host configures
  if (!opts.accessLogPath && !registryFlagsGiven()) {
    if (await isDaemonAvailable()) {
      await opts.client?.close();
      return { ...(await acquireImageLayersFromDaemon(reference, { platform: opts.platform, start: opts.start, predict: opts.predict, early: opts.early })), via: "daemon" };
    }
    // a daemon someone named explicitly and that is down is worth saying out loud (or refusing):
    // otherwise a benchmark or a deployment quietly runs the in-process path
    const named = process.env.LAZYPULL_SOCKET?.trim();
    if (named) {
      if (process.env.LAZYPULL_REQUIRE_DAEMON === "1") {
        await opts.client?.close();
        throw new CliError("CLI_DAEMON_UNAVAILABLE", `no lazypulld answers on LAZYPULL_SOCKET=${named} (LAZYPULL_REQUIRE_DAEMON=1 forbids serving the image in this process)`, { socket: named });
      }
      process.stderr.write(`lazypull: warning: no lazypulld answers on LAZYPULL_SOCKET=${named}; serving the image in this process (LAZYPULL_REQUIRE_DAEMON=1 makes this an error)\n`);
    }
  }
  return { ...(await acquireImageLayers(reference, opts)), via: "process" };
}
