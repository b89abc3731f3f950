import { LazypullError, type ErrorContext } from "@lazypull/errors";

/** A cache key that cannot name an entry (bad digest, empty or oversized id). */
export class CacheKeyError extends LazypullError {
  constructor(message: string, context: ErrorContext) {
    super("BLOBCACHE_BAD_KEY", message, context);
  }
}

/** A negative, fractional or otherwise impossible offset/length. */
export class CacheRangeError extends LazypullError {
  constructor(message: string, context: ErrorContext) {
    super("BLOBCACHE_BAD_RANGE", message, context);
  }
}

/** An entry larger than the whole cache cap: it would evict everything and still not fit. */
export class CacheEntryTooLargeError extends LazypullError {
  constructor(message: string, context: ErrorContext) {
    super("BLOBCACHE_ENTRY_TOO_LARGE", message, context);
  }
}

/** A size string such as "10GiB" that does not parse. */
export class SizeParseError extends LazypullError {
  constructor(message: string, context: ErrorContext) {
    super("BLOBCACHE_BAD_SIZE", message, context);
  }
}

/** The cache was used after `close()`. */
export class CacheClosedError extends LazypullError {
  constructor(context: ErrorContext) {
    super("BLOBCACHE_CLOSED", "the blob cache is closed", context);
  }
}

/** A bad option to `openBlobCache` (e.g. a relative directory, a negative size). */
export class CacheConfigError extends LazypullError {
  constructor(message: string, context: ErrorContext) {
    super("BLOBCACHE_BAD_CONFIG", message, context);
  }
}

/**
 * Not thrown to callers: describes why an on-disk entry was rejected (passed to the `onCorrupt` hook
 * and logs). The entry is dropped and the read is a miss.
 */
export class CacheCorruptEntryError extends LazypullError {
  constructor(message: string, context: ErrorContext) {
    super("BLOBCACHE_CORRUPT_ENTRY", message, context);
  }
}

/** A value that is not a Buffer was given to `put` or returned by a fetch function. */
export class CacheValueError extends LazypullError {
  constructor(message: string, context: ErrorContext) {
    super("BLOBCACHE_BAD_VALUE", message, context);
  }
}
