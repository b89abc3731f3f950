import type { ImageConfig } from "@lazypull/registry-client";
import { DaemonClient } from "./client.js";

/**
 * An image's layers served as directories, ready for an overlay; `release()` gives them back.
 * The same shape as the CLI's in-process `acquireImageLayers` result, so callers can use either.
 */
export interface ImageLayers {
  reference: string;
  manifestDigest: string;
  config: ImageConfig;
  /** top-most layer first, as an overlay's lowerdir wants; OCI form (fuse-overlayfs) */
  lowerDirs: string[];
  /** the same layers, top-most first, in kernel overlayfs form (when the server provides them) */
  overlayLowerDirs?: string[];
  /** the FUSE mount serving them (here: the daemon's, shared with other images) */
  fuseMountpoint?: string;
  /** network cost so far; `fuseOps`: operations the FUSE mount answered, when it serves only this image */
  stats(): Promise<{ bytesFetched: number; requests: number; fuseOps?: number }>;
  release(): Promise<void>;
}

/** What the daemon variant adds: the lease id, so another process (e.g. `lazypull umount`) can end it. */
export interface DaemonImageLayers extends ImageLayers {
  leaseId: string;
}

export interface DaemonAcquireOptions {
  platform?: string;
  /** default: `daemonSocketPath()` */
  socketPath?: string;
  /** the process whose death ends the lease; default this one. `null`: only `release()` ends it */
  pid?: number | null;
}

/**
 * Asks lazypulld to mount an image (layers already served for other images are shared) and leases it
 * for as long as this process lives, or until `release()`.
 */
export async function acquireImageLayersFromDaemon(reference: string, opts: DaemonAcquireOptions = {}): Promise<DaemonImageLayers> {
  const client = new DaemonClient(opts.socketPath === undefined ? {} : { socketPath: opts.socketPath });
  const pid = opts.pid === undefined ? process.pid : opts.pid;
  try {
    const lease = await client.acquire({
      reference,
      ...(opts.platform ? { platform: opts.platform } : {}),
      ...(pid === null ? {} : { pid }),
    });
    const digests = new Set(lease.layers.map((l) => l.digest));
    let released = false;
    return {
      leaseId: lease.id,
      reference: lease.reference,
      manifestDigest: lease.manifestDigest,
      config: lease.config,
      lowerDirs: lease.lowerDirs,
      ...(lease.overlayLowerDirs ? { overlayLowerDirs: lease.overlayLowerDirs } : {}),
      fuseMountpoint: lease.fuseMountpoint,
      // Counters are per layer: a layer shared with other images counts their reads too.
      async stats() {
        const layers = (await client.layers()).filter((l) => digests.has(l.digest));
        return {
          bytesFetched: layers.reduce((n, l) => n + l.bytesFetched, 0),
          requests: layers.reduce((n, l) => n + l.requests, 0),
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
