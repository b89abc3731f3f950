/**
 * The public contract of @lazypull/blob-cache, as used by fuse-fs and the apps.
 */
export interface CacheKey {
  /** "sha256:…" of the blob the bytes come from */
  blob: string;
  /** which piece of it: e.g. a chunk's compressed offset as a string, or "file:<path>" */
  id: string;
}

export interface CacheStats {
  entries: number;
  bytes: number;
  maxBytes: number;
  memoryBytes: number;
  hits: number;
  misses: number;
  evictions: number;
  corruptDropped: number;
}

export interface ChunkCache {
  get(key: CacheKey): Promise<Buffer | undefined>;
  /** bytes [offset, offset+length) of an entry without loading it whole */
  read(key: CacheKey, offset: number, length: number): Promise<Buffer | undefined>;
  has(key: CacheKey): Promise<boolean>;
  put(key: CacheKey, data: Buffer): Promise<void>;
  /** on miss, calls `fetch` once however many callers wait on the same key, stores and returns its bytes */
  getOrFetch(key: CacheKey, fetch: () => Promise<Buffer>): Promise<Buffer>;
  /** keep every entry of this blob from eviction until unpinned (counted) */
  pin(blob: string): void;
  unpin(blob: string): void;
  stats(): CacheStats;
  close(): Promise<void>;
}
