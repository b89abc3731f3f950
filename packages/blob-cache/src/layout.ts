import { createHash } from "node:crypto";
import { join } from "node:path";
import { BlobCacheError } from "./errors.js";
import type { CacheKey } from "./types.js";

/**
 * Directory layout under the cache root (versioned so a format change never misreads old files):
 *
 *   v1/data/<h0h1>/<algo>-<encoded>.<h2…h41>   one file per entry; h = sha256("<blob>\n<id>")
 *   v1/tmp/<entry name>.<pid>.<n>              writes in progress; renamed into data/ when complete
 *   v1/pins/<algo>-<encoded>.<pid>             a live process keeps this blob's entries from eviction
 *   v1/evict.lock                              held (O_EXCL, holds a pid) by the one process evicting
 *
 * The blob digest is in the file name so that eviction can honour pins without opening files.
 */
export const LAYOUT_VERSION = "v1";
const DIGEST = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]{16,128})$/;
export const MAX_ID_BYTES = 4096;

export interface Paths {
  root: string;
  data: string;
  tmp: string;
  pins: string;
  evictLock: string;
}

export function cachePaths(dir: string): Paths {
  const root = join(dir, LAYOUT_VERSION);
  return { root, data: join(root, "data"), tmp: join(root, "tmp"), pins: join(root, "pins"), evictLock: join(root, "evict.lock") };
}

/** "sha256:abc" → "sha256-abc": a file-name-safe form that maps back one to one. */
export function encodeBlob(blob: string): string {
  const m = DIGEST.exec(blob);
  if (!m) throw new BlobCacheError("BLOBCACHE_BAD_KEY", `not a blob digest: ${JSON.stringify(blob)} (expected e.g. "sha256:<hex>")`, { blob });
  return `${m[1]}-${m[2]}`;
}

export function decodeBlob(encoded: string): string | undefined {
  const i = encoded.indexOf("-");
  if (i <= 0) return undefined;
  const blob = `${encoded.slice(0, i)}:${encoded.slice(i + 1)}`;
  return DIGEST.test(blob) ? blob : undefined;
}

/** The string stored in an entry's header and used as the in-memory key. */
export function keyString(key: CacheKey): string {
  if (typeof key?.id !== "string" || key.id.length === 0 || Buffer.byteLength(key.id) > MAX_ID_BYTES) {
    throw new BlobCacheError("BLOBCACHE_BAD_KEY", `cache key id must be a non-empty string of at most ${MAX_ID_BYTES} bytes`, {
      blob: key?.blob,
      id: key?.id,
    });
  }
  encodeBlob(key.blob);
  return `${key.blob}\n${key.id}`;
}

export function parseKeyString(s: string): CacheKey {
  const i = s.indexOf("\n");
  return { blob: s.slice(0, i), id: s.slice(i + 1) };
}

/** Relative path of an entry under `data/`: "<fan-out>/<name>". */
export function entryRelPath(key: CacheKey): string {
  const h = createHash("sha256").update(keyString(key)).digest("hex");
  return `${h.slice(0, 2)}/${encodeBlob(key.blob)}.${h.slice(2, 42)}`;
}

/** The blob an entry file belongs to, from its name alone (undefined for a foreign file). */
export function blobOfEntryName(name: string): string | undefined {
  const dot = name.lastIndexOf(".");
  if (dot <= 0 || !/^[0-9a-f]{40}$/.test(name.slice(dot + 1))) return undefined;
  return decodeBlob(name.slice(0, dot));
}
