/**
 * The public contract of @lazypull/fuse-fs, as used by the launcher, the CLI and the daemon.
 */
import type { ChunkCache } from "@lazypull/blob-cache";
import type { BlobSource, Descriptor, ImageReference } from "@lazypull/registry-client";

export type PrefetchPolicy = "none" | "landmark" | "all";

export interface MountOptions {
  /** an existing empty directory */
  mountpoint: string;
  source: BlobSource;
  cache: ChunkCache;
  /** what to fetch ahead of reads: nothing, the landmark range, or the landmark range then the whole blob in the background (default) */
  prefetch?: PrefetchPolicy;
  /** serve layers whose TOC digest cannot be checked against a manifest annotation */
  allowUnverified?: boolean;
  /** fuse-native op timeout in ms (slow networks); default 120000 */
  opTimeoutMs?: number;
  /** write the order in which files are first read here (one layer-relative path per line, prefixed by layer hex) */
  accessLogPath?: string;
  /** a pino logger (or compatible) */
  logger?: import("pino").Logger;
  /** let other users (podman, containers) see the mount; default: true when running as root */
  allowOther?: boolean;
  /**
   * inflated chunks kept in process memory, shared by every layer of the mount; default 64 MiB. The
   * kernel's page cache keeps what was already served, so this mainly holds chunks being read piecewise
   * (a 4 MiB chunk arrives in 128 KiB reads); a long-lived daemon can keep it small.
   */
  memoryBytes?: number;
  /**
   * background fetching (prefetch `all`) waits until no on-demand read of the mount is pending and none
   * has happened for this long; default 2000 ms; 0: only while a read is pending
   */
  backgroundSilenceMs?: number;
  /**
   * called on the first read of a file through each open handle, with the layer and its path (must
   * not block: it runs inside the FUSE read); predictive prefetch follows the dynamic loader with it
   */
  onFirstRead?: (layerDigest: string, path: string) => void;
  /** uncompressed bytes fetched ahead of a sequential reader; default 8 MiB */
  readAheadBytes?: number;
  /**
   * bounded retries of a failing range fetch before the read answers EIO: default 4 attempts from
   * 250 ms, doubling; an on-demand attempt is abandoned after `attemptTimeoutMs` (default 25 s), so a
   * hanging registry also ends in EIO well inside `opTimeoutMs`
   */
  retry?: { attempts: number; delayMs: number; attemptTimeoutMs?: number };
}

export interface LayerSpec {
  ref: ImageReference;
  /** the layer descriptor from the manifest (digest, size, mediaType, annotations incl. toc.digest) */
  descriptor: Descriptor;
}

export type LayerState = "resolving" | "ready" | "prefetching" | "fetching" | "complete" | "error";

export interface LayerProgress {
  digest: string;
  /** directory inside the mount that holds the layer's tree (OCI form) */
  dir: string;
  /** the same tree in kernel overlayfs form */
  overlayDir: string;
  state: LayerState;
  kind: "estargz" | "stargz" | "whole";
  bytesFetched: number;
  bytesTotal: number;
  requests: number;
  errors: number;
  lastError?: string;
}

/** Where a served layer appears in the mount: the same tree in two forms. */
export interface LayerDirs {
  /** `<mnt>/<hex>`: OCI form, whiteouts as `.wh.NAME` files (fuse-overlayfs, people, tools) */
  dir: string;
  /** `<mnt>/<hex>.overlay`: kernel overlayfs form, whiteouts as 0/0 char devices, opaque dirs by xattr */
  overlayDir: string;
}

export interface LazyFs {
  readonly mountpoint: string;
  /** add a layer (idempotent per digest, reference-counted); resolves when its tree is served */
  addLayer(layer: LayerSpec): Promise<LayerDirs>;
  /** drop one reference; the layer disappears when none remain */
  releaseLayer(digest: string): void;
  progress(): LayerProgress[];
  /**
   * a served layer's tree and bytes, read in this process without going through the mount (undefined
   * while the layer is opening or after it is released)
   */
  layerTree(digest: string): LayerTree | undefined;
  /** FUSE operations answered since mount */
  readonly opCount: number;
  /** unmount and stop background work */
  close(): Promise<void>;
}

/** Options of `openRemoteLayer` (reading a layer without mounting, e.g. `lazypull ls/cat`). */
export interface OpenRemoteLayerOptions {
  source: BlobSource;
  cache: ChunkCache;
  allowUnverified?: boolean;
  logger?: import("pino").Logger;
  retry?: { attempts: number; delayMs: number; attemptTimeoutMs?: number };
}

/** A layer's tree answered from its TOC, bytes fetched on demand. */
export interface LayerTree {
  readonly digest: string;
  readonly kind: LayerProgress["kind"];
  /** a node by layer path ("" is the root; "./", leading and trailing "/" are ignored) */
  lookup(path: string): import("@lazypull/stargz-format").FileNode | undefined;
  /** names in a directory, sorted; undefined when not a directory */
  readdir(path: string): string[] | undefined;
  /** every node, parents first */
  walk(): Iterable<import("@lazypull/stargz-format").FileNode>;
  /** bytes of a regular file (default: all of it from `offset`) */
  read(path: string, offset?: number, length?: number): Promise<Buffer>;
  /** fetch these regular files whole now, at a reader's priority, in as few range requests as the blob allows */
  prefetch(paths: string[]): Promise<void>;
  /** the unverified start of a big file not yet fetched, for hints only (see ServedLayer.peekHead) */
  peek(path: string): Promise<Buffer | undefined>;
  /** network cost so far (requests, bytes) and state */
  progress(): Omit<LayerProgress, "dir" | "overlayDir">;
}

/** A layer opened for reading without a mount (`openRemoteLayer`); `close()` stops its fetches. */
export interface RemoteLayer extends LayerTree {
  /** wait for the cache writes of what was already fetched (call before `close()` to keep them) */
  flush(): Promise<void>;
  close(): void;
}
