import { LazypullError } from "@lazypull/errors";

/**
 * BAD_KEY: a key that cannot name an entry (bad digest, empty or oversized id). BAD_RANGE: an
 * impossible offset/length. ENTRY_TOO_LARGE: an entry larger than the whole cap. BAD_SIZE: a size
 * string such as "10GiB" that does not parse. CLOSED: used after `close()`. BAD_CONFIG: a bad option
 * to `openBlobCache`. BAD_VALUE: a non-Buffer given to `put` or returned by a fetch function.
 * CORRUPT_ENTRY is never thrown to callers: it says why an on-disk entry was dropped (the `onCorrupt`
 * hook, logs), and the read is a miss.
 */
export const BLOBCACHE_ERROR_CODES = [
  "BLOBCACHE_BAD_KEY",
  "BLOBCACHE_BAD_RANGE",
  "BLOBCACHE_ENTRY_TOO_LARGE",
  "BLOBCACHE_BAD_SIZE",
  "BLOBCACHE_CLOSED",
  "BLOBCACHE_BAD_CONFIG",
  "BLOBCACHE_CORRUPT_ENTRY",
  "BLOBCACHE_BAD_VALUE",
] as const;
export type BlobCacheErrorCode = (typeof BLOBCACHE_ERROR_CODES)[number];

export class BlobCacheError extends LazypullError<BlobCacheErrorCode> {}
