/**
 * The wire contract of lazypulld's HTTP API (JSON over a Unix socket). The daemon implements these
 * shapes and this package's client reads them; both import them from here.
 */
import type { StartCommand } from "@lazypull/image";
import type { ImageConfig } from "@lazypull/registry-client";

/** Every non-2xx answer carries this body. `code` is stable (branch on it), `message` is for people. */
export interface ApiError {
  code: string;
  message: string;
  context?: Record<string, unknown>;
}

/** `POST /v1/images` */
export interface AcquireRequest {
  /** e.g. `127.0.0.1:5000/lazy/debian:bookworm` */
  reference: string;
  /** `os/arch[/variant]`; default: the daemon host's */
  platform?: string;
  /**
   * The process holding the lease. The daemon releases the image when this pid is gone, so a killed
   * client cannot pin layers forever. Without it the lease lasts until `DELETE /v1/images/:id`.
   */
  pid?: number;
  /**
   * How the container will be started (its command on top of the image's config): the daemon fetches
   * what that start reads first — the program, its loader and libraries, /etc/passwd… — as soon as the
   * layers are served. Without it, the image's own Entrypoint and Cmd are predicted.
   */
  start?: StartCommand;
  /** `false`: fetch nothing ahead for this lease (held to read the image, not to start it); default true */
  predict?: boolean;
  /**
   * Answer once the manifest and config are in, before the layers' TOCs are read: the directories can be
   * stacked at once (lookups below a layer wait until it is open), and `GET /v1/images/:id/ready` says
   * when they are open or why one cannot be. Default false: answered with every layer open.
   */
  early?: boolean;
}

export interface ImageLayerInfo {
  digest: string;
  /** directory inside the daemon's FUSE mount serving this layer's tree (OCI form) */
  dir: string;
  /** the same tree in kernel overlayfs form (absent from daemons before it existed) */
  overlayDir?: string;
}

/** One lease on a mounted image (`POST /v1/images` answer and `GET /v1/images` items). */
export interface ImageLease {
  id: string;
  /** canonical reference */
  reference: string;
  manifestDigest: string;
  platform?: string;
  config: ImageConfig;
  /** bottom-most first, as in the manifest */
  layers: ImageLayerInfo[];
  /** top-most first, as fuse-overlayfs' lowerdir wants */
  lowerDirs: string[];
  /** top-most first, the same layers in kernel overlayfs form */
  overlayLowerDirs?: string[];
  /** the daemon's single FUSE mount */
  fuseMountpoint: string;
  pid?: number;
  /** ISO time */
  createdAt: string;
}

export type LayerState = "resolving" | "ready" | "prefetching" | "fetching" | "complete" | "error";

/** `GET /v1/layers` items: one per layer served, however many images use it. */
export interface LayerStatus {
  digest: string;
  dir: string;
  overlayDir?: string;
  state: LayerState;
  kind: "estargz" | "stargz" | "whole";
  bytesFetched: number;
  bytesTotal: number;
  requests: number;
  errors: number;
  lastError?: string;
  /** leases (image ids) using this layer */
  images: string[];
  /**
   * podman's use of the layer through the Additional Layer Store: the image references it was looked
   * up under and how many podman layers hold it (absent when the store never served it)
   */
  store?: { references: string[]; uses: number };
  /** response bytes for this layer's blob per registry or mirror host that sent them */
  hosts?: Record<string, number>;
}

/** `GET /v1/cache` */
export interface CacheStatus {
  dir: string;
  entries: number;
  bytes: number;
  maxBytes: number;
  blobs: number;
  pinnedBlobs: string[];
  /** this daemon's counters since it started */
  hits: number;
  misses: number;
  evictions: number;
}

/** `GET /healthz` */
export interface Health {
  status: "ok";
  pid: number;
  version: string;
  uptimeSeconds: number;
  images: number;
  layers: number;
  fuseMountpoint: string;
  /** podman's Additional Layer Store (`additionallayerstores = ["<this>:ref"]`), when the daemon serves one */
  layerStore?: string;
  /** bytes, from process.memoryUsage() */
  memory: { rss: number; heapUsed: number; heapTotal: number; external: number; arrayBuffers: number };
}
