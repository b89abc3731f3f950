import { mkdir, stat, unlink } from "node:fs/promises";
import { isAbsolute, join, resolve } from "node:path";
import { hasCode } from "@lazypull/errors";
import { defaultCacheDir } from "./default-dir.js";
import { encodeHeader } from "./entry/format.js";
import { EntryReader, loadHeader, type EntryRead } from "./entry/read.js";
import { EntryWriter, removeDeadTemps } from "./entry/write.js";
import { EntryIndex } from "./entry-index.js";
import { BlobCacheError } from "./errors.js";
import { Evictor, type EvictResult } from "./evict.js";
import { flushLastUse, noteUse, preciseNow } from "./last-use.js";
import { cachePaths, entryRelPath, keyString, parseKeyString, type Paths } from "./layout.js";
import { MemoryTier } from "./memory-tier.js";
import { ignoreMissing, isMissing, undefinedIfMissing } from "./missing.js";
import { parseSize } from "./parse-size.js";
import { Pins } from "./pins.js";
import { scanDataDir } from "./scan.js";
import type { CacheKey, CacheStats, ChunkCache } from "./types.js";

/*
 * The public face of the cache: its verbs (get, read, put, getOrFetch, pin, list, evictTo, close, …) and
 * the order in which each one consults the memory tier, the disk, the index and eviction. It holds the
 * state they share and no I/O of its own beyond a `stat` and an `unlink`, so that a verb can be read top
 * to bottom here while each job lives in a module that does only it: entry files (`entry/`), the index
 * and its rescan (`entry-index.ts`, `scan.ts`), last use (`last-use.ts`), eviction and its lock
 * (`evict.ts`), pins (`pins.ts`), the memory tier (`memory-tier.ts`).
 */

export type { EvictResult } from "./evict.js";

export const DEFAULT_MAX_BYTES = 10 * 2 ** 30;
export const DEFAULT_MEMORY_BYTES = 64 * 2 ** 20;

export interface BlobCacheOptions {
  /** cache directory (absolute); default `defaultCacheDir()` */
  dir?: string;
  /** on-disk cap in bytes (headers included); default `$LAZYPULL_CACHE_MAX_SIZE` or 10 GiB */
  maxBytes?: number;
  /** in-memory tier cap in bytes; 0 disables it; default 64 MiB */
  memoryBytes?: number;
  /** eviction brings usage down to this fraction of `maxBytes` (default 0.9) so it does not run on every put */
  lowWatermark?: number;
  /** told about every corrupt entry that was dropped (for logs) */
  onCorrupt?: (err: BlobCacheError) => void;
}

export interface BlobCacheStats extends CacheStats {
  dir: string;
  memoryMaxBytes: number;
  memoryEntries: number;
  memoryHits: number;
  fetches: number;
  /** puts that failed on disk inside getOrFetch (the fetched bytes were still returned) */
  writeErrors: number;
  /** blobs pinned by this process */
  pinnedBlobs: number;
  /** leftovers of dead writers removed at open */
  tmpCleaned: number;
}

export interface CacheListing {
  blob: string;
  id: string;
  /** payload bytes */
  size: number;
  /** bytes on disk, header included */
  diskBytes: number;
  lastUse: Date;
  pinned: boolean;
}

export interface CacheUsage {
  dir: string;
  entries: number;
  bytes: number;
  maxBytes: number;
  /** distinct blobs with at least one entry */
  blobs: number;
  /** blobs pinned by any live process */
  pinnedBlobs: string[];
}

export async function openBlobCache(opts: BlobCacheOptions = {}): Promise<BlobCache> {
  const dir = opts.dir ?? defaultCacheDir();
  if (!isAbsolute(dir)) throw new BlobCacheError("BLOBCACHE_BAD_CONFIG", `cache directory must be absolute: ${dir}`, { dir });
  const envMax = process.env.LAZYPULL_CACHE_MAX_SIZE;
  const maxBytes = opts.maxBytes ?? (envMax ? parseSize(envMax) : DEFAULT_MAX_BYTES);
  const memoryBytes = opts.memoryBytes ?? DEFAULT_MEMORY_BYTES;
  const low = opts.lowWatermark ?? 0.9;
  for (const [name, v] of [["maxBytes", maxBytes], ["memoryBytes", memoryBytes]] as const) {
    if (!Number.isSafeInteger(v) || v < 0) throw new BlobCacheError("BLOBCACHE_BAD_CONFIG", `${name} must be a non-negative integer, got ${v}`, { dir, [name]: v });
  }
  if (!(low > 0 && low <= 1)) throw new BlobCacheError("BLOBCACHE_BAD_CONFIG", `lowWatermark must be in (0, 1], got ${low}`, { dir });
  const paths = cachePaths(resolve(dir));
  await Promise.all([paths.data, paths.tmp, paths.pins].map((p) => mkdir(p, { recursive: true })));
  const cache = new BlobCache(resolve(dir), paths, maxBytes, memoryBytes, low, opts.onCorrupt);
  await cache.cleanTmp();
  // The index scan is a `stat` per entry (8,300 entries: ~300 ms here) and lookups never need it (they go to
  // the file): the caller starts resolving and reading at once, and eviction waits for the scan instead.
  cache.startScan();
  return cache;
}

/**
 * The on-disk chunk cache. The disk is the truth: the in-memory index (sizes, last use) is rebuilt from
 * a directory scan started at open (in the background) and before eviction (`evict.ts` says when a pass may
 * skip it), and every lookup goes to the file itself, so entries written by other processes are found and
 * entries they evicted are misses.
 */
export class BlobCache implements ChunkCache {
  /**
   * Per entry: size, last use, last mtime we know the file has (`touched`), and `addedAt`: when this
   * process wrote or first used it (rescans keep such entries), 0 for entries found by a rescan.
   */
  private readonly index = new EntryIndex();
  private readonly memory: MemoryTier;
  private readonly reader: EntryReader;
  private readonly writer: EntryWriter;
  private readonly pins: Pins;
  private readonly evictor: Evictor;
  private readonly flights = new Map<string, Promise<Buffer>>();
  /** the scan running now: concurrent callers share it rather than `stat` every entry twice */
  private scanning: Promise<void> | undefined;
  /** the scan started at open; eviction judges usage only after it (before it the index knows only our puts) */
  private firstScan: Promise<void> | undefined;
  private closed = false;
  private readonly counters = {
    hits: 0,
    misses: 0,
    evictions: 0,
    corruptDropped: 0,
    memoryHits: 0,
    fetches: 0,
    writeErrors: 0,
    tmpCleaned: 0,
  };

  /** @internal use `openBlobCache` */
  constructor(
    readonly dir: string,
    private readonly paths: Paths,
    readonly maxBytes: number,
    memoryBytes: number,
    lowWatermark: number,
    private readonly onCorrupt?: (err: BlobCacheError) => void,
  ) {
    this.memory = new MemoryTier(memoryBytes);
    this.reader = new EntryReader(paths.data);
    this.writer = new EntryWriter(paths);
    this.pins = new Pins(paths.pins);
    this.evictor = new Evictor({
      index: this.index,
      dataDir: paths.data,
      lockPath: paths.evictLock,
      maxBytes,
      lowWater: Math.floor(maxBytes * lowWatermark),
      rescan: () => this.rescan(),
      pinned: () => this.pins.live(),
      forget: (rel) => this.forget(rel),
      evicted: () => void this.counters.evictions++,
    });
  }

  async get(key: CacheKey): Promise<Buffer | undefined> {
    this.assertOpen();
    const k = keyString(key);
    const rel = entryRelPath(key);
    const mem = this.memory.get(k);
    if (mem) {
      this.counters.hits++;
      this.counters.memoryHits++;
      this.noteUse(rel);
      return Buffer.from(mem);
    }
    const data = await this.fromDisk(rel, () => this.reader.whole(rel, k, () => this.knownSize(rel)));
    if (!data) {
      this.counters.misses++;
      return undefined;
    }
    this.counters.hits++;
    this.memory.set(k, data);
    return data;
  }

  async read(key: CacheKey, offset: number, length: number): Promise<Buffer | undefined> {
    this.assertOpen();
    for (const [name, v] of [["offset", offset], ["length", length]] as const) {
      if (!Number.isSafeInteger(v) || v < 0) {
        throw new BlobCacheError("BLOBCACHE_BAD_RANGE", `${name} must be a non-negative integer, got ${v}`, { blob: key?.blob, id: key?.id, offset, length });
      }
    }
    const k = keyString(key);
    const rel = entryRelPath(key);
    const mem = this.memory.get(k);
    if (mem) {
      this.counters.hits++;
      this.counters.memoryHits++;
      this.noteUse(rel);
      return Buffer.from(mem.subarray(offset, offset + length));
    }
    const out = await this.fromDisk(rel, () => this.reader.range(rel, k, offset, length));
    if (out) this.counters.hits++;
    else this.counters.misses++;
    return out;
  }

  /** Present on disk or in memory (not verified: a later `get` may still find it corrupt). */
  async has(key: CacheKey): Promise<boolean> {
    this.assertOpen();
    if (this.memory.get(keyString(key))) return true;
    return (await stat(join(this.paths.data, entryRelPath(key))).catch(undefinedIfMissing)) !== undefined;
  }

  async put(key: CacheKey, data: Buffer): Promise<void> {
    this.assertOpen();
    const k = keyString(key);
    if (!Buffer.isBuffer(data)) throw new BlobCacheError("BLOBCACHE_BAD_VALUE", "cache entries must be Buffers", { blob: key.blob, id: key.id });
    const rel = entryRelPath(key);
    const header = encodeHeader(k, data);
    const total = header.length + data.length;
    if (total > this.maxBytes) {
      throw new BlobCacheError("BLOBCACHE_ENTRY_TOO_LARGE", `entry of ${total} bytes exceeds the cache cap of ${this.maxBytes} bytes`, {
        blob: key.blob,
        id: key.id,
        size: total,
        maxBytes: this.maxBytes,
      });
    }
    await this.writer.write(rel, header, data);
    const now = preciseNow();
    this.index.set(rel, total, now, now, now, key.blob);
    this.reader.drop(rel);
    this.memory.set(k, data);
    await this.evictor.written(total);
  }

  getOrFetch(key: CacheKey, fetch: () => Promise<Buffer>): Promise<Buffer> {
    this.assertOpen();
    const k = keyString(key);
    const inflight = this.flights.get(k);
    if (inflight) return inflight;
    const flight = (async () => {
      const hit = await this.get(key);
      if (hit) return hit;
      this.counters.fetches++;
      const data = await fetch();
      if (!Buffer.isBuffer(data)) throw new BlobCacheError("BLOBCACHE_BAD_VALUE", "fetch did not return a Buffer", { blob: key.blob, id: key.id });
      try {
        await this.put(key, data);
      } catch (err) {
        // The bytes are good; failing to keep them (full disk, entry over the cap) must not fail the read.
        if (hasCode(err, "BLOBCACHE_CLOSED")) throw err;
        this.counters.writeErrors++;
      }
      return data;
    })().finally(() => this.flights.delete(k));
    this.flights.set(k, flight);
    return flight;
  }

  pin(blob: string): void {
    this.assertOpen();
    this.pins.pin(blob);
  }

  unpin(blob: string): void {
    if (this.pins.unpin(blob)) this.evictor.unpinned();
  }

  stats(): BlobCacheStats {
    return {
      entries: this.index.count,
      bytes: this.index.bytes,
      maxBytes: this.maxBytes,
      memoryBytes: this.memory.bytes,
      hits: this.counters.hits,
      misses: this.counters.misses,
      evictions: this.counters.evictions,
      corruptDropped: this.counters.corruptDropped,
      dir: this.dir,
      memoryMaxBytes: this.memory.maxBytes,
      memoryEntries: this.memory.entries,
      memoryHits: this.counters.memoryHits,
      fetches: this.counters.fetches,
      writeErrors: this.counters.writeErrors,
      pinnedBlobs: this.pins.size,
      tmpCleaned: this.counters.tmpCleaned,
    };
  }

  /** Evicts least recently used, unpinned entries until usage ≤ `targetBytes` (default: the cap). */
  async evictTo(targetBytes = this.maxBytes): Promise<EvictResult> {
    this.assertOpen();
    return this.evictor.evictTo(targetBytes);
  }

  /** Every entry on disk with its key (reads each header; for the CLI, not the hot path). */
  async list(): Promise<CacheListing[]> {
    this.assertOpen();
    await this.rescan();
    const pinned = await this.pins.live();
    const out: CacheListing[] = [];
    for (const slot of this.index.slots()) {
      const id = this.index.ticket(slot);
      const blob = this.index.blob(slot);
      let diskBytes = this.index.size(slot);
      let lastUse = this.index.lastUse(slot);
      const h = await loadHeader(join(this.paths.data, this.index.rel(slot))).catch((err) => {
        if (hasCode(err, "BLOBCACHE_CORRUPT_ENTRY") || isMissing(err)) return undefined;
        throw err;
      });
      if (!h) continue;
      if (this.index.holds(slot, id)) {
        diskBytes = this.index.size(slot);
        lastUse = this.index.lastUse(slot);
      }
      const key = parseKeyString(h.key);
      out.push({ ...key, size: h.payloadLen, diskBytes, lastUse: new Date(lastUse), pinned: pinned.has(blob) });
    }
    return out.sort((a, b) => b.lastUse.getTime() - a.lastUse.getTime());
  }

  /** What is on disk now (rescans; no entry is opened): for `lazypull cache stats`. */
  async usage(): Promise<CacheUsage> {
    this.assertOpen();
    await this.rescan();
    return {
      dir: this.dir,
      entries: this.index.count,
      bytes: this.index.bytes,
      maxBytes: this.maxBytes,
      blobs: this.index.blobCount,
      pinnedBlobs: [...(await this.pins.live())].sort(),
    };
  }

  /** Resolves when background work (the index scan started at open, eviction, pin files) has settled. */
  async idle(): Promise<void> {
    await this.firstScan;
    await this.evictor.idle();
    await this.pins.settled();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.allSettled([...this.flights.values()]);
    this.closed = true;
    await this.idle();
    await this.pins.releaseAll();
    await flushLastUse(this.index, this.paths.data);
    this.memory.clear();
    this.reader.clear();
  }

  /** @internal Removes temp files whose writer died (kill -9, crash): they never became entries. */
  async cleanTmp(): Promise<void> {
    this.counters.tmpCleaned += await removeDeadTemps(this.paths.tmp);
  }

  /** @internal Re-reads sizes and mtimes from disk; keeps entries this process added during the scan. */
  rescan(): Promise<void> {
    if (!this.scanning) {
      const scan = scanDataDir(this.index, this.paths.data, (rel) => this.forget(rel)).then(() => this.evictor.scanned());
      this.scanning = scan;
      void scan
        .finally(() => {
          if (this.scanning === scan) this.scanning = undefined;
        })
        .catch(() => undefined);
    }
    return this.scanning;
  }

  /**
   * @internal The scan at open, not awaited by `openBlobCache`. A failure is not kept: the next eviction
   * pass scans again and reports it.
   */
  startScan(): void {
    this.firstScan = this.rescan()
      .catch(() => undefined)
      .then(() => this.evictor.firstScanEnded());
  }

  /** One read from disk: a missing file is forgotten and a corrupt one dropped, both a miss; a hit is a use. */
  private async fromDisk(rel: string, read: () => Promise<EntryRead | undefined>): Promise<Buffer | undefined> {
    let got: EntryRead | undefined;
    try {
      got = await read();
    } catch (err) {
      if (hasCode(err, "BLOBCACHE_CORRUPT_ENTRY")) return this.dropCorrupt(rel, err as BlobCacheError);
      throw err;
    }
    if (!got) {
      this.forget(rel);
      return undefined;
    }
    this.noteUse(rel, got.fileBytes);
    return got.bytes;
  }

  private knownSize(rel: string): number | undefined {
    const slot = this.index.find(rel);
    return slot >= 0 ? this.index.size(slot) : undefined;
  }

  private async dropCorrupt(rel: string, err: BlobCacheError): Promise<undefined> {
    this.counters.corruptDropped++;
    this.onCorrupt?.(err);
    // Another process may have replaced the file with a good copy meanwhile: losing that copy costs a refetch.
    await unlink(join(this.paths.data, rel)).catch(ignoreMissing);
    this.forget(rel);
    return undefined;
  }

  private forget(rel: string): void {
    const slot = this.index.find(rel);
    if (slot >= 0) this.index.remove(slot);
    this.reader.drop(rel);
  }

  private noteUse(rel: string, size?: number): void {
    noteUse(this.index, this.paths.data, rel, size);
  }

  private assertOpen(): void {
    if (this.closed) throw new BlobCacheError("BLOBCACHE_CLOSED", "the blob cache is closed", { dir: this.dir });
  }
}
