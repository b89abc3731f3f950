import type { Logger } from "pino";

/**
 * The `info` file of a layer, as containers/storage decodes it into its `Layer` record. `diff-digest`
 * must equal the image config's diff_id for the layer, or podman rejects the image.
 */
export interface LayerInfo {
  "compressed-diff-digest": string;
  "compressed-size": number;
  "diff-digest": string;
  "diff-size": number;
  /** containers/storage's archive.Compression: 2 is gzip */
  compression: number;
}

/** One layer the backend serves. */
export interface StoreLayer {
  /** the layer's root in overlay form (whiteouts as 0/0 char devices), e.g. a LazyFs overlay view */
  diffDir: string;
  info: LayerInfo;
  /** bytes of the compressed blob (`blob` is read only by podman push/save/diff) */
  readBlob(offset: number, length: number): Promise<Buffer>;
}

/**
 * What the FUSE store asks of whoever serves the layers (lazypulld). The store itself keeps nothing:
 * every lookup goes here, so the backend decides what is cached and for how long.
 */
export interface StoreBackend {
  /**
   * The layer `digest` (blob digest, or TOC digest for newer containers/storage) of image `reference`;
   * undefined when the store does not serve it (not an eStargz layer of that image), so podman
   * pulls it the ordinary way. Throwing also answers "not here" (ENOENT), after a log line.
   */
  lookup(reference: string, digest: string): Promise<StoreLayer | undefined>;
  /** podman started using the layer (it created `<layer>/use`) */
  use(reference: string, digest: string): void;
  /** podman is done with the layer (it removed `<layer>`) */
  release(reference: string, digest: string): void;
  /** images with a served layer, for listing the root (optional: an empty root is valid) */
  known?(): Array<{ reference: string; digests: string[] }>;
}

export interface LayerStoreOptions {
  /** an existing directory; podman's `additionallayerstores` entry is `<mountpoint>:ref` */
  mountpoint: string;
  backend: StoreBackend;
  logger?: Logger;
  /** FUSE op timeout; a first lookup resolves the image and reads its TOC, so give slow links time */
  opTimeoutMs?: number;
}

export interface LayerStore {
  readonly mountpoint: string;
  /** FUSE operations answered so far */
  readonly opCount: number;
  close(): Promise<void>;
}
