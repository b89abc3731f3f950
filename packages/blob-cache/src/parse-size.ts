import { BlobCacheError } from "./errors.js";

// Decimal units for kB/MB/…, binary for KiB/MiB/…; a bare K/M/G/T means binary, as in docker and podman.
const UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
  k: 2 ** 10,
  m: 2 ** 20,
  g: 2 ** 30,
  t: 2 ** 40,
};

/** "10GiB" → 10737418240, "1MB" → 1000000, "512" → 512. Throws `BLOBCACHE_BAD_SIZE` on anything else. */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new BlobCacheError("BLOBCACHE_BAD_SIZE", `not a size: ${JSON.stringify(text)} (expected e.g. 512, 1MB, 10GiB)`, { input: text });
  }
  const bytes = Math.floor(Number(m[1]) * unit);
  if (!Number.isSafeInteger(bytes)) throw new BlobCacheError("BLOBCACHE_BAD_SIZE", `size too large: ${JSON.stringify(text)}`, { input: text });
  return bytes;
}
