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
}

export interface LayerSpec {
  ref: ImageReference;
  /** the layer descriptor from the manifest (digest, size, mediaType, annotations incl. toc.digest) */
  descriptor: Descriptor;
}

export type LayerState = "resolving" | "ready" | "prefetching" | "fetching" | "complete" | "error";

export interface LayerProgress {
  digest: string;
  /** directory inside the mount that holds the layer's tree */
  dir: string;
  state: LayerState;
  kind: "estargz" | "stargz" | "whole";
  bytesFetched: number;
  bytesTotal: number;
  requests: number;
  errors: number;
  lastError?: string;
}

export interface LazyFs {
  readonly mountpoint: string;
  /** add a layer (idempotent per digest, reference-counted); resolves when its tree is served */
  addLayer(layer: LayerSpec): Promise<string>;
  /** drop one reference; the layer disappears when none remain */
  releaseLayer(digest: string): void;
  progress(): LayerProgress[];
  /** unmount and stop background work */
  close(): Promise<void>;
}
