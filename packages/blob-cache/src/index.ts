export type * from "./types.js";
export {
  openBlobCache,
  BlobCache,
  DEFAULT_MAX_BYTES,
  DEFAULT_MEMORY_BYTES,
  type BlobCacheOptions,
  type BlobCacheStats,
  type CacheListing,
  type CacheUsage,
  type EvictResult,
} from "./blob-cache.js";
export { defaultCacheDir } from "./default-dir.js";
export { parseSize } from "./parse-size.js";
export { BlobCacheError, BLOBCACHE_ERROR_CODES, type BlobCacheErrorCode } from "./errors.js";
