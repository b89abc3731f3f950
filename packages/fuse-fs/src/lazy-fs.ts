import { join, resolve } from "node:path";
import { describeError } from "@lazypull/errors";
import type Fuse from "fuse-native";
import pino, { type Logger } from "pino";
import { AccessRecorder } from "./access-log.js";
import { FuseFsError } from "./errors.js";
import { FsCore, OVERLAY_DIR_SUFFIX, type MountedLayer } from "./fs-core.js";
import { ByteLru } from "./layer/byte-lru.js";
import { DemandGate } from "./layer/demand-gate.js";
import { FetchCounters } from "./layer/counters.js";
import type { ServedLayer } from "./layer/layer.js";
import { TOC_DIGEST_ANNOTATION } from "@lazypull/stargz-format";
import { openLayer } from "./layer/open-layer.js";
import { createOperations } from "./operations/index.js";
import { isMountPoint } from "@lazypull/host";
import { cleanStaleMount } from "./stale-mount.js";
import { treeOf } from "./remote-layer.js";
import type { LayerDirs, LayerProgress, LayerSpec, LayerState, LayerTree, LazyFs, MountOptions } from "./types.js";

const DIGEST = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:([a-f0-9]{32,})$/;
const MAX_SLOTS = 255;
const DEFAULT_MEMORY_BYTES = 64 * 1024 * 1024;
/**
 * Quiet needed after on-demand reads before background fetching goes on. A starting container reads
 * in bursts a few hundred ms apart (podman and runc, the loader, then the program's own files); 2 s
 * covers those gaps and still starts filling the layer soon after the start is done.
 */
export const DEFAULT_BACKGROUND_SILENCE_MS = 2000;

interface Entry {
  digest: string;
  hex: string;
  slot: number;
  refs: number;
  counters: FetchCounters;
  state: LayerState;
  kind: LayerProgress["kind"];
  bytesTotal: number;
  ready: Promise<LayerDirs>;
  layer?: ServedLayer;
}

let fuseNative: Promise<typeof Fuse> | undefined;
/**
 * The addon is loaded on first use, not at import: dlopen of it and libfuse costs ~80 ms that
 * `lazypull ls/cat/convert` never need. Call early (without awaiting) to load it while other work,
 * such as the first registry requests, is in flight.
 */
export function loadFuseNative(): Promise<typeof Fuse> {
  fuseNative ??= import("fuse-native").then((m) => m.default);
  return fuseNative;
}

let defaultLogger: Logger | undefined;
function fallbackLogger(): Logger {
  defaultLogger ??= pino({ level: process.env.LAZYPULL_LOG_LEVEL ?? "warn" }, pino.destination({ fd: 2, sync: false }));
  return defaultLogger;
}

class MountedLazyFs implements LazyFs {
  readonly mountpoint: string;
  private readonly entries = new Map<string, Entry>();
  private closed: Promise<void> | undefined;
  /** inflated chunks in memory, shared by all layers so the bound holds however many are mounted */
  private readonly memory: ByteLru<string>;
  /** on-demand reads of every layer, which background fetching of every layer yields to */
  private readonly gate: DemandGate;

  constructor(
    private readonly opts: MountOptions,
    private readonly fuse: Fuse,
    private readonly core: FsCore,
    private readonly recorder: AccessRecorder | undefined,
    private readonly log: Logger,
  ) {
    this.mountpoint = resolve(opts.mountpoint);
    this.memory = new ByteLru<string>(opts.memoryBytes ?? DEFAULT_MEMORY_BYTES);
    this.gate = new DemandGate(opts.backgroundSilenceMs ?? DEFAULT_BACKGROUND_SILENCE_MS);
  }

  get opCount(): number {
    return this.core.opCount;
  }

  private dirsOf(hex: string): LayerDirs {
    return layerDirsAt(this.mountpoint, hex);
  }

  addLayer(spec: LayerSpec): Promise<LayerDirs> {
    if (this.closed) return Promise.reject(new FuseFsError("FUSEFS_CLOSED", `mount ${this.mountpoint} is closed`, {}));
    const digest = spec.descriptor.digest;
    const m = DIGEST.exec(digest);
    if (!m) {
      return Promise.reject(new FuseFsError("FUSEFS_BAD_LAYER", `not a layer digest: ${JSON.stringify(digest)}`, { digest }));
    }
    const existing = this.entries.get(digest);
    if (existing) {
      existing.refs += 1;
      return existing.ready;
    }
    const slot = this.freeSlot();
    const hex = m[1]!;
    const counters = new FetchCounters();
    const entry: Entry = {
      digest,
      hex,
      slot,
      refs: 1,
      counters,
      state: "resolving",
      kind: spec.descriptor.annotations?.[TOC_DIGEST_ANNOTATION] ? "estargz" : "whole",
      bytesTotal: spec.descriptor.size,
      ready: Promise.resolve(this.dirsOf(hex)),
    };
    this.entries.set(digest, entry);
    entry.ready = (async () => {
      try {
        const layer = await openLayer(spec, {
          source: this.opts.source,
          cache: this.opts.cache,
          log: this.log,
          counters,
          onState: (s) => (entry.state = s),
          memory: this.memory,
          gate: this.gate,
          ...(this.opts.allowUnverified ? { allowUnverified: true } : {}),
          ...(this.opts.readAheadBytes !== undefined ? { readAheadBytes: this.opts.readAheadBytes } : {}),
          ...(this.opts.retry ? { retry: this.opts.retry } : {}),
        });
        if (this.entries.get(digest) !== entry || this.closed) {
          layer.close();
          throw new FuseFsError("FUSEFS_LAYER_GONE", `layer ${digest} was released while it was opening`, { digest });
        }
        entry.layer = layer;
        entry.kind = layer.kind;
        const mounted: MountedLayer = { hex, slot, layer };
        this.core.layers.set(hex, mounted);
        this.core.opening.delete(hex);
        // whoever added the layer is about to read it: background work waits for that
        this.gate.touch();
        layer.startBackground(this.opts.prefetch ?? "all");
        this.log.info({ digest, kind: layer.kind, nodes: layer.nodeCount }, "layer served");
        return this.dirsOf(hex);
      } catch (err) {
        if (this.entries.get(digest) === entry) {
          this.entries.delete(digest);
          this.core.opening.delete(hex);
        }
        this.log.error({ err, digest }, "layer could not be served");
        throw err;
      }
    })();
    // its directory is there from now on; what lies below waits for the TOC (FsCore.waitFor)
    this.core.opening.set(hex, { slot, ready: entry.ready });
    return entry.ready;
  }

  private freeSlot(): number {
    const used = new Set([...this.entries.values()].map((e) => e.slot));
    for (let s = 1; s <= MAX_SLOTS; s++) if (!used.has(s)) return s;
    throw new FuseFsError("FUSEFS_BAD_LAYER", `one mount serves at most ${MAX_SLOTS} layers`, {});
  }

  releaseLayer(digest: string): void {
    const e = this.entries.get(digest);
    if (!e) return;
    e.refs -= 1;
    if (e.refs > 0) return;
    this.entries.delete(digest);
    this.core.layers.delete(e.hex);
    this.core.opening.delete(e.hex);
    e.layer?.close();
  }

  layerTree(digest: string): LayerTree | undefined {
    const layer = this.entries.get(digest)?.layer;
    return layer ? treeOf(layer) : undefined;
  }

  progress(): LayerProgress[] {
    return [...this.entries.values()].map((e) => {
      const dirs = this.dirsOf(e.hex);
      if (e.layer) return { ...e.layer.progress(), ...dirs };
      const c = e.counters;
      return {
        digest: e.digest,
        ...dirs,
        state: e.state,
        kind: e.kind,
        bytesFetched: c.bytesFetched,
        bytesTotal: e.bytesTotal,
        requests: c.requests,
        errors: c.errors,
        ...(c.lastError !== undefined ? { lastError: c.lastError } : {}),
      };
    });
  }

  close(): Promise<void> {
    this.closed ??= (async () => {
      // what was fetched is kept: the cache writes that follow reads finish first (bounded by the fetch budget)
      await Promise.all([...this.entries.values()].map((e) => e.layer?.flush().catch(() => undefined) ?? Promise.resolve()));
      for (const e of this.entries.values()) e.layer?.close();
      this.entries.clear();
      this.core.layers.clear();
      this.core.opening.clear();
      try {
        await new Promise<void>((res, rej) => this.fuse.unmount((err) => (err ? rej(err) : res())));
      } catch (err) {
        // the mount may already be gone (fusermount -u by someone else); anything else is reported
        if (await isMountPoint(this.mountpoint)) {
          throw new FuseFsError("FUSEFS_MOUNT_FAILED", `unmounting ${this.mountpoint} failed: ${describeError(err)}`, {
            mountpoint: this.mountpoint,
          }, { cause: err });
        }
      } finally {
        await this.recorder?.close();
      }
    })();
    return this.closed;
  }
}

/**
 * Where a mount at `mountpoint` serves layer `digest` (OCI form and kernel-overlay form) once it is
 * added: known before the layer is open, so an overlay can be stacked on it while its TOC is read.
 */
export function layerDirs(mountpoint: string, digest: string): LayerDirs {
  const m = DIGEST.exec(digest);
  if (!m) throw new FuseFsError("FUSEFS_BAD_LAYER", `not a layer digest: ${JSON.stringify(digest)}`, { digest });
  return layerDirsAt(mountpoint, m[1]!);
}

function layerDirsAt(mountpoint: string, hex: string): LayerDirs {
  const dir = join(mountpoint, hex);
  return { dir, overlayDir: dir + OVERLAY_DIR_SUFFIX };
}

/**
 * Mounts the lazy filesystem at `opts.mountpoint` (an existing directory). The root lists one
 * directory per added layer, named by the layer digest's hex. A stale mount left there by a dead
 * process is cleaned first; a live one is an error.
 */
export async function mountLazyFs(opts: MountOptions): Promise<LazyFs> {
  const mountpoint = resolve(opts.mountpoint);
  const log = (opts.logger ?? fallbackLogger()).child({ component: "fuse-fs", mountpoint });
  if (opts.memoryBytes !== undefined && !(Number.isSafeInteger(opts.memoryBytes) && opts.memoryBytes >= 0)) {
    throw new FuseFsError("FUSEFS_INVALID", `memoryBytes must be a non-negative integer, got ${opts.memoryBytes}`, { memoryBytes: opts.memoryBytes });
  }
  await cleanStaleMount(mountpoint);
  if (await isMountPoint(mountpoint)) {
    throw new FuseFsError("FUSEFS_MOUNTPOINT_BUSY", `${mountpoint} is already a live mount`, { mountpoint });
  }
  let FuseImpl: typeof Fuse;
  try {
    FuseImpl = await loadFuseNative();
  } catch (err) {
    throw new FuseFsError("FUSEFS_MOUNT_FAILED", `cannot load the FUSE addon (fuse-native; it needs libfuse.so.2 from the libfuse2 package): ${describeError(err)}`, { mountpoint }, { cause: err });
  }
  // only a mount asked to record keeps the list: a daemon's mount lives for weeks and reads every file
  const recorder = opts.accessLogPath ? new AccessRecorder(opts.accessLogPath) : undefined;
  const core = new FsCore(recorder, opts.onFirstRead);
  const ops = createOperations(core, log);
  const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
  const fuse = new FuseImpl(mountpoint, ops, {
    // ops wait on the network: fail them only after this, and never the 15 s fuse-native default
    timeout: opts.opTimeoutMs ?? 120_000,
    // layers are immutable: let the kernel cache pages and attributes
    kernelCache: true,
    entryTimeout: 10,
    attrTimeout: 10,
    defaultPermissions: true,
    allowOther: opts.allowOther ?? isRoot,
    // fuse-native knows no `ro`/`use_ino`/`auto_unmount` pairing; they ride in the option string after fsname.
    // use_ino: hardlinks show one inode; auto_unmount: fusermount detaches the mount if this process dies.
    fsname: "lazypull,ro,use_ino,auto_unmount",
    subtype: "lazypull",
  });
  try {
    await new Promise<void>((res, rej) => fuse.mount((err) => (err ? rej(err) : res())));
  } catch (err) {
    await recorder?.close();
    throw new FuseFsError("FUSEFS_MOUNT_FAILED", `mounting ${mountpoint} failed: ${describeError(err)}`, { mountpoint }, { cause: err });
  }
  log.info("mounted");
  return new MountedLazyFs(opts, fuse, core, recorder, log);
}
