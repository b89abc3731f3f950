/**
 * The public contract of @lazypull/registry-client, as used by fuse-fs and the apps.
 * Implementations may add members; changing these means updating every user.
 */
export interface ImageReference {
  /** e.g. "docker.io", "127.0.0.1:5000" */
  registry: string;
  /** e.g. "library/debian" */
  repository: string;
  tag?: string;
  digest?: string;
  /** canonical string form */
  toString(): string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { os: string; architecture: string; variant?: string };
  urls?: string[];
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ImageConfig {
  architecture?: string;
  os?: string;
  config?: {
    Env?: string[];
    Cmd?: string[];
    Entrypoint?: string[];
    WorkingDir?: string;
    User?: string;
    ExposedPorts?: Record<string, object>;
    Labels?: Record<string, string>;
    [k: string]: unknown;
  };
  rootfs: { type: "layers"; diff_ids: string[] };
  history?: unknown[];
  [k: string]: unknown;
}

/** The result of resolving a reference to one platform's image. */
export interface ResolvedImage {
  ref: ImageReference;
  /** digest of the platform manifest */
  manifestDigest: string;
  manifest: ImageManifest;
  /** raw bytes of the manifest as served */
  manifestBytes: Buffer;
  config: ImageConfig;
}

export interface ByteRange {
  offset: number;
  length: number;
}

/** The subset of the registry client that fuse-fs needs to read blobs lazily. */
export interface BlobSource {
  /** bytes [offset, offset+length) of a blob */
  fetchRange(ref: ImageReference, digest: string, range: ByteRange, signal?: AbortSignal): Promise<Buffer>;
  /** several ranges, in one request where the registry allows it; results in the order asked */
  fetchRanges(ref: ImageReference, digest: string, ranges: ByteRange[], signal?: AbortSignal): Promise<Buffer[]>;
  /** the whole blob as a stream, digest verified at the end (the stream errors on mismatch) */
  fetchBlob(ref: ImageReference, digest: string, signal?: AbortSignal): Promise<NodeJS.ReadableStream>;
}
