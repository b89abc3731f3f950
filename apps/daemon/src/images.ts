import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { AcquireRequest, ImageLease, LayerStatus } from "@lazypull/daemon-client";
import { layerDirs, type LazyFs } from "@lazypull/fuse-fs";
import { isProcessAlive } from "@lazypull/host";
import { loadPredictorFor, lowerDirsOf, resolveAndStartLayers } from "@lazypull/image";
import type { ContentCache, Descriptor, ImageConfig, RegistryClient } from "@lazypull/registry-client";
import { DaemonError } from "./errors.js";
import type { LoadFollowers } from "./load-followers.js";

/** A lease and where its layers are: an early lease is answered while they are still opening. */
interface Held {
  lease: ImageLease;
  /** settles when the layers are open (at once for a lease that was not early); rejects with why not */
  opened: Promise<void>;
  /** a failed lease holds no layers; an open one may have a predictor hearing about opened files */
  state: { kind: "opening" } | { kind: "open"; unfollow?: () => void } | { kind: "failed" };
}

/**
 * Image leases on the daemon's one LazyFs. Every lease adds a reference to each of its layers, so a
 * layer used by several images (or several leases of one image) is mounted and fetched once, and
 * disappears only when its last lease ends — by `release`, or because the lease's owner pid died.
 */
export class ImageStore {
  private readonly held = new Map<string, Held>();
  private closing = false;

  constructor(
    private readonly fs: LazyFs,
    private readonly client: RegistryClient,
    private readonly log: Logger,
    /** where manifests by digest and configs are kept, so a warm host resolves with one request (none by digest) */
    private readonly cache?: ContentCache,
    /** the mount's "file first read" events, for predictive prefetch after the start */
    private readonly followers?: LoadFollowers,
  ) {}

  async acquire(req: AcquireRequest): Promise<ImageLease> {
    if (this.closing) throw new DaemonError("DAEMON_SHUTTING_DOWN", "lazypulld is shutting down", {});
    if (req.pid !== undefined && !isProcessAlive(req.pid)) {
      throw new DaemonError("DAEMON_BAD_REQUEST", `pid ${req.pid} is not a running process, so it cannot hold a lease`, { pid: req.pid });
    }
    // a string, so a short name goes through registries.conf's aliases and search registries
    // the layers' TOCs are fetched while the config is on its way
    const { resolved, adding } = await resolveAndStartLayers(this.client, req.reference, this.fs, {
      ...(req.platform ? { platform: req.platform } : {}),
      ...(this.cache ? { cache: this.cache } : {}),
    });
    // an early lease is answered now; its layers open meanwhile (lookups below them wait for it: fuse-fs)
    if (!req.early) await adding;
    const layers = resolved.manifest.layers;
    if (this.closing) {
      // (all or nothing: layers that failed to open were given back already)
      void adding.then(() => layers.forEach((d) => this.fs.releaseLayer(d.digest)), () => undefined);
      throw new DaemonError("DAEMON_SHUTTING_DOWN", "lazypulld is shutting down", {});
    }
    const dirs = layers.map((d) => layerDirs(this.fs.mountpoint, d.digest));
    const lease: ImageLease = {
      id: randomUUID(),
      reference: resolved.ref.toString(),
      manifestDigest: resolved.manifestDigest,
      ...(req.platform ? { platform: req.platform } : {}),
      config: resolved.config,
      layers: layers.map((d, i) => ({ digest: d.digest, dir: dirs[i]!.dir, overlayDir: dirs[i]!.overlayDir })),
      ...lowerDirsOf(dirs),
      fuseMountpoint: this.fs.mountpoint,
      ...(req.pid !== undefined ? { pid: req.pid } : {}),
      createdAt: new Date().toISOString(),
    };
    // (addImageLayers rejects with the layer's own typed error: FUSEFS_BAD_LAYER, a registry's…)
    const held: Held = { lease, opened: adding.then(() => undefined), state: { kind: "opening" } };
    held.opened.catch(() => undefined);
    this.held.set(lease.id, held);
    void held.opened.then(
      () => {
        // released while its layers were opening: they are given back now that they are all held
        if (this.held.get(lease.id) !== held) return layers.forEach((d) => this.fs.releaseLayer(d.digest));
        // open before predicting: a predictor that throws must not leave the layers held forever
        const state: Extract<Held["state"], { kind: "open" }> = { kind: "open" };
        held.state = state;
        try {
          state.unfollow = this.predict(lease, layers, resolved.config, req);
        } catch (err) {
          this.log.warn({ id: lease.id, err }, "could not predict the start's reads");
        }
      },
      (err: unknown) => {
        // all or nothing: addImageLayers gave back every layer it had taken; the lease holds none
        held.state = { kind: "failed" };
        this.log.warn({ id: lease.id, err }, "an early lease's layers could not be opened");
      },
    );
    this.log.info({ id: lease.id, reference: lease.reference, manifestDigest: lease.manifestDigest, pid: req.pid, layers: layers.length }, "image acquired");
    return lease;
  }

  /**
   * The client is about to start the container: what that start reads first is fetched meanwhile, and
   * the programs and libraries it opens later have their own libraries fetched ahead of the loader.
   */
  private predict(lease: ImageLease, layers: Descriptor[], config: ImageConfig, req: AcquireRequest): (() => void) | undefined {
    const predictor = req.predict === false ? undefined : loadPredictorFor(this.fs, layers, config, req.start ?? {});
    if (!predictor) return undefined;
    void predictor.start().then(
      (p) => this.log.info({ id: lease.id, files: p.files.length, bytes: p.bytes, program: p.program }, "start files prefetched"),
      () => undefined,
    );
    return this.followers?.add(layers.map((d) => d.digest), predictor);
  }

  /**
   * Resolves once the lease's layers are open (at once for a lease that was not early); rejects with
   * why one could not be (`FUSEFS_BAD_LAYER`…): its directories then answer EIO.
   */
  async ready(id: string): Promise<void> {
    // the open's own rejection: the layer's typed error as it was
    await this.entry(id).opened;
  }

  get(id: string): ImageLease {
    return this.entry(id).lease;
  }

  list(): ImageLease[] {
    return [...this.held.values()].map((h) => h.lease);
  }

  release(id: string, why = "released"): void {
    const { lease, state } = this.entry(id);
    this.held.delete(id);
    // layers still opening are given back once they are open; a failed lease holds none
    if (state.kind === "open") {
      state.unfollow?.();
      for (const l of lease.layers) this.fs.releaseLayer(l.digest);
    }
    this.log.info({ id, reference: lease.reference, pid: lease.pid, why }, "image released");
  }

  private entry(id: string): Held {
    const held = this.held.get(id);
    if (!held) throw new DaemonError("DAEMON_IMAGE_NOT_FOUND", `no image lease with id ${JSON.stringify(id)}`, { id });
    return held;
  }

  /** Ends the leases whose owner process is gone. Returns how many. */
  sweepDeadOwners(): number {
    let n = 0;
    for (const lease of this.list()) {
      if (lease.pid !== undefined && !isProcessAlive(lease.pid)) {
        this.release(lease.id, `owner pid ${lease.pid} exited`);
        n++;
      }
    }
    return n;
  }

  /** The fuse-fs progress of every served layer, with the leases using it. */
  layerStatus(): LayerStatus[] {
    const users = new Map<string, string[]>();
    for (const { lease } of this.held.values()) {
      for (const l of lease.layers) {
        const ids = users.get(l.digest) ?? [];
        if (!ids.includes(lease.id)) ids.push(lease.id);
        users.set(l.digest, ids);
      }
    }
    return this.fs.progress().map((p) => ({ ...p, images: users.get(p.digest) ?? [] }));
  }

  /** Stops taking leases and drops every one (shutdown). */
  releaseAll(): void {
    this.closing = true;
    for (const id of [...this.held.keys()]) this.release(id, "daemon stopping");
  }
}
