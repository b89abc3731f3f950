import type { ImageLayers, StartCommand } from "@lazypull/image";
import { DaemonClient } from "./client.js";

export interface DaemonAcquireOptions {
  platform?: string;
  /** default: `daemonSocketPath()` */
  socketPath?: string;
  /** the process whose death ends the lease (default: this one) */
  pid?: number;
  /** how the container will be started, so the daemon can fetch what that start reads first */
  start?: StartCommand;
  /** false: the daemon predicts nothing for this lease (without `start` it would predict the image's own command) */
  predict?: boolean;
  /** hand the layers out before they are open (`ImageLayers.ready` says when they are): see `AcquireRequest.early` */
  early?: boolean;
}

/**
 * lazypulld's side of @lazypull/image's `ImageLayers` contract: asks the daemon to mount an image
 * (layers already served for other images are shared) and leases it for as long as the `pid` process
 * lives, or until `release()`.
 */
export async function acquireImageLayersFromDaemon(reference: string, opts: DaemonAcquireOptions = {}): Promise<ImageLayers> {
  const client = new DaemonClient(opts.socketPath === undefined ? {} : { socketPath: opts.socketPath });
  const pid = opts.pid ?? process.pid;
  try {
    const lease = await client.acquire({
      reference,
      ...(opts.platform ? { platform: opts.platform } : {}),
      ...(opts.start ? { start: opts.start } : {}),
      ...(opts.predict === false ? { predict: false } : {}),
      ...(opts.early ? { early: true } : {}),
      pid,
    });
    const ready = opts.early ? client.ready(lease.id) : undefined;
    ready?.catch(() => undefined);
    const digests = new Set(lease.layers.map((l) => l.digest));
    let released = false;
    return {
      reference: lease.reference,
      manifestDigest: lease.manifestDigest,
      config: lease.config,
      lowerDirs: lease.lowerDirs,
      ...(lease.overlayLowerDirs ? { overlayLowerDirs: lease.overlayLowerDirs } : {}),
      fuseMountpoint: lease.fuseMountpoint,
      ...(ready ? { ready } : {}),
      // Counters are per layer: a layer shared with other images counts their reads too.
      async stats() {
        const layers = (await client.layers()).filter((l) => digests.has(l.digest));
        const hosts: Record<string, number> = {};
        for (const l of layers) for (const [h, n] of Object.entries(l.hosts ?? {})) hosts[h] = (hosts[h] ?? 0) + n;
        return {
          bytesFetched: layers.reduce((n, l) => n + l.bytesFetched, 0),
          requests: layers.reduce((n, l) => n + l.requests, 0),
          hosts,
        };
      },
      async release() {
        if (released) return;
        released = true;
        try {
          await client.release(lease.id);
        } finally {
          await client.close();
        }
      },
    };
  } catch (err) {
    await client.close();
    throw err;
  }
}
