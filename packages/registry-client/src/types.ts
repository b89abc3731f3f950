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

/**
 * Where `resolve` may keep what is named by its digest — manifests and indexes fetched or named by digest,
 * and configs — so resolving the same image again costs at most the tag's manifest request. Keys are
 * `{ blob: <digest>, id: "oci:manifest" | "oci:config" }`. The client hashes every entry it reads back
 * against its digest: one that does not match is fetched again (and overwritten), never used.
 * `@lazypull/blob-cache`'s cache fits as it is.
 */
export interface ContentCache {
  get(key: { blob: string; id: string }): Promise<Buffer | undefined>;
  put(key: { blob: string; id: string }, data: Buffer): Promise<void>;
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
  /**
   * The bytes last fetched for this blob failed their check: a mirror that sent them is passed over for a
   * while, so the next fetch goes to the next source (true when a mirror was set aside)
   */
  reportBadBytes?(ref: ImageReference, digest: string): boolean;
}

// ---- additions (issue 3); the members above are the original contract ----

/** What `getManifest` returns: the raw bytes as served, their verified digest, and the parsed document. */
export type ManifestResult =
  | { kind: "manifest"; ref: ImageReference; digest: string; mediaType: string; bytes: Buffer; manifest: ImageManifest }
  | { kind: "index"; ref: ImageReference; digest: string; mediaType: string; bytes: Buffer; index: ImageIndex };

export interface BlobInfo {
  digest: string;
  size: number;
  mediaType?: string;
}

export interface PushBlobResult {
  digest: string;
  size: number;
  /** `exists`: skipped, the registry had it; `mounted`: cross-repository mount; `uploaded`: bytes sent */
  outcome: "exists" | "mounted" | "uploaded";
}

/** Counters a client keeps from its creation (fuse-fs and the benchmark report them). */
export interface RegistryStats {
  /** HTTP requests sent, including retries, redirect hops and token requests */
  requests: number;
  /** response body bytes received */
  bytesReceived: number;
  /** request body bytes sent (buffers; streamed bodies are counted as they are read) */
  bytesSent: number;
  retries: number;
  redirects: number;
  tokenRequests: number;
  /** range GETs (single and multi) */
  rangeRequests: number;
  /** multi-range requests answered as one multipart/byteranges (or one covering range) */
  multiRangeHits: number;
  /** multi-range requests the registry refused (400/416/200), served by single ranges instead */
  multiRangeFallbacks: number;
  /** range requests answered 200 with the whole blob, sliced client-side */
  rangeIgnored: number;
  /** calls a mirror failed and the next source (another mirror, or the registry) answered instead */
  mirrorFallbacks: number;
  /** requests and response bytes per host that answered (`host[:port]`): which mirror or registry served a run */
  hosts: Record<string, { requests: number; bytesReceived: number }>;
}
