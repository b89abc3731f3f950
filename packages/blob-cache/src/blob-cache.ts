import { isProcessAlive } from "@lazypull/host";
import { mkdir, open, readdir, readFile, rename, stat, unlink, utimes, writeFile } from "node:fs/promises";
import { basename, isAbsolute, join, resolve } from "node:path";
import { hasCode } from "@lazypull/errors";
import { defaultCacheDir } from "./default-dir.js";
import {
  blockCount,
  blockSpan,
  decodeHeader,
  encodeHeader,
  HEADER_PROBE,
  verifyBlocks,
  type EntryHeader,
} from "./entry-format.js";
import {
  CacheClosedError,
  CacheConfigError,
  CacheCorruptEntryError,
  CacheEntryTooLargeError,
  CacheRangeError,
  CacheValueError,
} from "./errors.js";
import {
  cachePaths,
  decodeBlob,
  encodeBlob,
  entryRelPath,
  keyString,
  parseKeyString,
  type Paths,
} from "./layout.js";
import { EntryIndex, ScannedEntries } from "./entry-index.js";
import { HandlePool } from "./handle-pool.js";
import { MemoryTier } from "./memory-tier.js";
import { parseSize } from "./parse-size.js";
import type { CacheKey, CacheStats, ChunkCache } from "./types.js";
import { LRUCache } from "lru-cache";

export const DEFAULT_MAX_BYTES = 10 * 2 ** 30;
export const DEFAULT_MEMORY_BYTES = 64 * 2 ** 20;
/** An entry's mtime is its last use for other processes; refreshing it on every hit would cost a syscall. */
const TOUCH_INTERVAL_MS = 30_000;

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
  onCorrupt?: (err: CacheCorruptEntryError) => void;
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

export interface EvictResult {
  evicted: number;
  freedBytes: number;
  /** another process held the eviction lock: nothing was done */
  busy: boolean;
}

/**
 * Wall-clock ms with sub-ms precision: last uses in one process must order strictly, and must compare
 * right with file mtimes (the kernel's coarse clock, never ahead of this one).
 */
const preciseNow = () => performance.timeOrigin + performance.now();

/** Eviction locks held by this process (several caches in one process share a pid). */
const heldLocks = new Set<string>();

const isMissing = (err: unknown) => (err as NodeJS.ErrnoException)?.code === "ENOENT";
const ignoreMissing = (err: unknown) => {
  if (!isMissing(err)) throw err;
};

export async function openBlobCache(opts: BlobCacheOptions = {}): Promise<BlobCache> {
  const dir = opts.dir ?? defaultCacheDir();
  if (!isAbsolute(dir)) throw new CacheConfigError(`cache directory must be absolute: ${dir}`, { dir });
  const envMax = process.env.LAZYPULL_CACHE_MAX_SIZE;
  const maxBytes = opts.maxBytes ?? (envMax ? parseSize(envMax) : DEFAULT_MAX_BYTES);
  const memoryBytes = opts.memoryBytes ?? DEFAULT_MEMORY_BYTES;
  const low = opts.lowWatermark ?? 0.9;
  for (const [name, v] of [["maxBytes", maxBytes], ["memoryBytes", memoryBytes]] as const) {
    if (!Number.isSafeInteger(v) || v < 0) throw new CacheConfigError(`${name} must be a non-negative integer, got ${v}`, { dir, [name]: v });
  }
  if (!(low > 0 && low <= 1)) throw new CacheConfigError(`lowWatermark must be in (0, 1], got ${low}`, { dir });
  const paths = cachePaths(resolve(dir));
  await Promise.all([paths.data, paths.tmp, paths.pins].map((p) => mkdir(p, { recursive: true })));
  const cache = new BlobCache(resolve(dir), paths, maxBytes, memoryBytes, low, opts.onCorrupt);
  await cache.cleanTmp();
  await cache.rescan();
  return cache;
}

/**
 * The on-disk chunk cache. The disk is the truth: the in-memory index (sizes, last use) is rebuilt from
 * a directory scan at open and before each eviction, and every lookup goes to the file itself, so entries
 * written by other processes are found and entries they evicted are misses.
 */
export class BlobCache implements ChunkCache {
  /**
   * Per entry: size, last use, last mtime we know the file has (`touched`), and `addedAt`: when this
   * process wrote or first used it (rescans keep such entries), 0 for entries found by a rescan.
   */
  private readonly index = new EntryIndex();
  private usedBytes = 0;
  private bytesSinceScan = 0;
  private readonly memory: MemoryTier;
  private readonly headers = new LRUCache<string, EntryHeader>({ max: 4096 });
  private readonly handles = new HandlePool(32);
  private readonly flights = new Map<string, Promise<Buffer>>();
  private readonly pins = new Map<string, number>();
  private pinChain: Promise<void> = Promise.resolve();
  private evictRun: Promise<EvictResult> | undefined;
  private readonly madeDirs = new Set<string>();
  private tmpCounter = 0;
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
    private readonly onCorrupt?: (err: CacheCorruptEntryError) => void,
  ) {
    this.memory = new MemoryTier(memoryBytes);
    this.lowWater = Math.floor(maxBytes * lowWatermark);
  }
  private readonly lowWater: number;

  async get(key: CacheKey): Promise<Buffer | undefined> {
    this.assertOpen();
    const k = keyString(key);
    const mem = this.memory.get(k);
    if (mem) {
      this.counters.hits++;
      this.counters.memoryHits++;
      this.noteUse(entryRelPath(key));
      return Buffer.from(mem);
    }
    const data = await this.readWhole(k, entryRelPath(key));
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
        throw new CacheRangeError(`${name} must be a non-negative integer, got ${v}`, { blob: key?.blob, id: key?.id, offset, length });
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
    const out = await this.readRange(k, rel, offset, length);
    if (out) this.counters.hits++;
    else this.counters.misses++;
    return out;
  }

  /** Present on disk or in memory (not verified: a later `get` may still find it corrupt). */
  async has(key: CacheKey): Promise<boolean> {
    this.assertOpen();
    if (this.memory.get(keyString(key))) return true;
    try {
      await stat(join(this.paths.data, entryRelPath(key)));
      return true;
    } catch (err) {
      ignoreMissing(err);
      return false;
    }
  }

  async put(key: CacheKey, data: Buffer): Promise<void> {
    this.assertOpen();
    const k = keyString(key);
    if (!Buffer.isBuffer(data)) throw new CacheValueError("cache entries must be Buffers", { blob: key.blob, id: key.id });
    const rel = entryRelPath(key);
    const header = encodeHeader(k, data);
    const total = header.length + data.length;
    if (total > this.maxBytes) {
      throw new CacheEntryTooLargeError(`entry of ${total} bytes exceeds the cache cap of ${this.maxBytes} bytes`, {
        blob: key.blob,
        id: key.id,
        size: total,
        maxBytes: this.maxBytes,
      });
    }
    await this.writeEntry(rel, header, data);
    const now = preciseNow();
    const old = this.index.find(rel);
    this.usedBytes += total - (old >= 0 ? this.index.size(old) : 0);
    this.index.set(rel, total, now, now, now, key.blob);
    this.bytesSinceScan += total;
    this.headers.delete(rel);
    this.handles.drop(rel);
    this.memory.set(k, data);
    if (this.usedBytes > this.maxBytes) {
      // Backpressure on writers only: reads never wait for eviction.
      for (let i = 0; i < 3 && this.usedBytes > this.maxBytes; i++) {
        if ((await this.startEviction()).busy) break;
      }
    } else if (this.bytesSinceScan > this.maxBytes / 4) {
      // Other processes write too; look at the real usage now and then.
      void this.startEviction().catch(() => undefined);
    }
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
      if (!Buffer.isBuffer(data)) throw new CacheValueError("fetch did not return a Buffer", { blob: key.blob, id: key.id });
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

  /** `read` that falls back to `getOrFetch` of the whole entry on a miss. */
  async readOrFetch(key: CacheKey, offset: number, length: number, fetch: () => Promise<Buffer>): Promise<Buffer> {
    const hit = await this.read(key, offset, length);
    if (hit) return hit;
    const whole = await this.getOrFetch(key, fetch);
    return Buffer.from(whole.subarray(offset, offset + length));
  }

  pin(blob: string): void {
    this.assertOpen();
    const enc = encodeBlob(blob);
    const n = this.pins.get(blob) ?? 0;
    this.pins.set(blob, n + 1);
    if (n === 0) this.pinIo(() => writeFile(join(this.paths.pins, `${enc}.${process.pid}`), `${process.pid}\n`));
  }

  unpin(blob: string): void {
    const n = this.pins.get(blob);
    if (!n) return;
    if (n > 1) {
      this.pins.set(blob, n - 1);
      return;
    }
    this.pins.delete(blob);
    this.pinIo(() => unlink(join(this.paths.pins, `${encodeBlob(blob)}.${process.pid}`)).catch(ignoreMissing));
  }

  stats(): BlobCacheStats {
    return {
      entries: this.index.count,
      bytes: this.usedBytes,
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
    await this.evictRun?.catch(() => undefined);
    for (let i = 0; ; i++) {
      const run = this.runEviction(targetBytes);
      this.evictRun = run;
      const res = await run.finally(() => {
        if (this.evictRun === run) this.evictRun = undefined;
      });
      if (!res.busy || i >= 50) return res;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Every entry on disk with its key (reads each header; for the CLI, not the hot path). */
  async list(): Promise<CacheListing[]> {
    this.assertOpen();
    await this.rescan();
    const pinned = await this.pinnedBlobs();
    const out: CacheListing[] = [];
    for (const slot of this.index.slots()) {
      const id = this.index.ticket(slot);
      const blob = this.index.blob(slot);
      let diskBytes = this.index.size(slot);
      let lastUse = this.index.lastUse(slot);
      const h = await this.loadHeader(this.index.rel(slot)).catch((err) => {
        if (err instanceof CacheCorruptEntryError || isMissing(err)) return undefined;
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
      bytes: this.usedBytes,
      maxBytes: this.maxBytes,
      blobs: this.index.blobCount,
      pinnedBlobs: [...(await this.pinnedBlobs())].sort(),
    };
  }

  /** Resolves when background work (eviction, pin files) has settled. */
  async idle(): Promise<void> {
    await this.evictRun?.catch(() => undefined);
    await this.pinChain;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.allSettled([...this.flights.values()]);
    this.closed = true;
    await this.idle();
    for (const blob of [...this.pins.keys()]) {
      this.pins.set(blob, 1);
      this.unpin(blob);
    }
    await this.pinChain;
    await this.flushLastUse();
    this.memory.clear();
    this.headers.clear();
    this.handles.clear();
  }

  // ---- disk ----

  /** Writes last uses newer than the files' mtimes, so other processes and the next run see them. */
  private async flushLastUse(): Promise<void> {
    const stale: number[] = [];
    const ids: number[] = [];
    for (const slot of this.index.slots()) {
      if (this.index.lastUse(slot) > this.index.touched(slot)) {
        stale.push(slot);
        ids.push(this.index.ticket(slot));
      }
    }
    for (let i = 0; i < stale.length; i += 64) {
      const batch: Promise<void>[] = [];
      for (let j = i; j < Math.min(i + 64, stale.length); j++) {
        const slot = stale[j]!;
        if (!this.index.holds(slot, ids[j]!)) continue; // forgotten meanwhile: its file is gone
        const lastUse = this.index.lastUse(slot);
        this.index.setTouched(slot, lastUse);
        batch.push(utimes(join(this.paths.data, this.index.rel(slot)), lastUse / 1000, lastUse / 1000).catch(() => undefined));
      }
      await Promise.all(batch);
    }
  }

  /** @internal Removes temp files whose writer died (kill -9, crash): they never became entries. */
  async cleanTmp(): Promise<void> {
    for (const name of await readdir(this.paths.tmp)) {
      const pid = Number(name.split(".").at(-2));
      if (pid === process.pid || isProcessAlive(pid)) continue;
      await unlink(join(this.paths.tmp, name)).catch(ignoreMissing);
      this.counters.tmpCleaned++;
    }
  }

  /** @internal Re-reads sizes and mtimes from disk; keeps entries this process added during the scan. */
  async rescan(): Promise<void> {
    const started = preciseNow();
    const found = new ScannedEntries();
    for (const fan of await readdir(this.paths.data)) {
      if (!/^[0-9a-f]{2}$/.test(fan)) continue;
      const names = await readdir(join(this.paths.data, fan)).catch((err) => (isMissing(err) ? [] : Promise.reject(err)));
      await Promise.all(
        names.map(async (name) => {
          const blob = found.blobOf(fan, name);
          if (blob < 0) return;
          const st = await stat(join(this.paths.data, fan, name)).catch((err) => (isMissing(err) ? undefined : Promise.reject(err)));
          if (st) found.add(fan, name, blob, st.size, st.mtimeMs);
        }),
      );
    }
    const seen = new Uint8Array(this.index.slotLimit + found.count); // slots found on disk
    for (let i = 0; i < found.count; i++) {
      const size = found.size(i);
      const mtime = found.mtime(i);
      let slot = this.index.findScanned(found, i);
      if (slot >= 0) {
        seen[slot] = 1;
        if (this.index.addedAt(slot) >= started) continue; // written by us during the scan: fresher than the stat
        this.usedBytes += size - this.index.size(slot);
        this.index.setSize(slot, size);
        this.index.setLastUse(slot, Math.max(this.index.lastUse(slot), mtime));
        this.index.setTouched(slot, Math.max(this.index.touched(slot), mtime));
      } else {
        slot = this.index.addScanned(found, i, mtime, mtime, 0);
        if (slot < 0) continue; // blobOf only passes names whose blob decodes
        seen[slot] = 1;
        this.usedBytes += size;
      }
    }
    for (const slot of this.index.slots()) {
      if (!seen[slot] && this.index.addedAt(slot) < started) this.forget(this.index.rel(slot));
    }
    this.bytesSinceScan = 0;
  }

  private async writeEntry(rel: string, header: Buffer, data: Buffer): Promise<void> {
    const tmp = join(this.paths.tmp, `${basename(rel)}.${process.pid}.${++this.tmpCounter}`);
    const final = join(this.paths.data, rel);
    try {
      const fh = await open(tmp, "wx");
      try {
        const total = header.length + data.length;
        let written = (await fh.writev([header, data], 0)).bytesWritten;
        while (written < total) {
          const rest = Buffer.concat([header, data]).subarray(written);
          written += (await fh.write(rest, 0, rest.length, written)).bytesWritten;
        }
      } finally {
        await fh.close();
      }
      const fanDir = join(this.paths.data, rel.slice(0, 2));
      if (!this.madeDirs.has(fanDir)) {
        await mkdir(fanDir, { recursive: true });
        this.madeDirs.add(fanDir);
      }
      // No fsync: a process crash keeps the page cache, and after a power loss a torn or empty file fails
      // its checksums and is dropped, never served.
      await rename(tmp, final);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
  }

  private async readWhole(k: string, rel: string): Promise<Buffer | undefined> {
    const path = join(this.paths.data, rel);
    const slot = await this.openEntry(rel);
    if (!slot) return undefined;
    const fh = slot.fh;
    try {
      const known = this.index.find(rel);
      const size = known >= 0 ? this.index.size(known) : (await fh.stat()).size;
      const buf = Buffer.allocUnsafe(size);
      const { bytesRead } = await fh.read(buf, 0, size, 0);
      const file = buf.subarray(0, bytesRead);
      const h = this.parseHeader(file, path, k);
      if (file.length !== h.headerLen + h.payloadLen) {
        throw new CacheCorruptEntryError(`corrupt cache entry ${path}: file is ${file.length} bytes, header says ${h.headerLen + h.payloadLen}`, { path });
      }
      const payload = file.subarray(h.headerLen);
      verifyBlocks(h, 0, blockCount(h.payloadLen, h.blockSize), payload, path);
      this.noteUse(rel, file.length);
      return payload;
    } catch (err) {
      if (err instanceof CacheCorruptEntryError) return this.dropCorrupt(rel, err);
      throw err;
    } finally {
      this.handles.release(slot);
    }
  }

  private async readRange(k: string, rel: string, offset: number, length: number): Promise<Buffer | undefined> {
    const path = join(this.paths.data, rel);
    const slot = await this.openEntry(rel);
    if (!slot) return undefined;
    const fh = slot.fh;
    try {
      let h = this.headers.get(rel);
      let probe: Buffer | undefined;
      if (!h) {
        probe = Buffer.allocUnsafe(HEADER_PROBE);
        probe = probe.subarray(0, (await fh.read(probe, 0, HEADER_PROBE, 0)).bytesRead);
        let d = decodeHeader(probe, path);
        if ("need" in d) {
          probe = Buffer.allocUnsafe(d.need);
          probe = probe.subarray(0, (await fh.read(probe, 0, d.need, 0)).bytesRead);
          d = decodeHeader(probe, path);
          if ("need" in d) throw new CacheCorruptEntryError(`corrupt cache entry ${path}: file ends inside its header`, { path });
        }
        if (d.key !== k) throw new CacheCorruptEntryError(`corrupt cache entry ${path}: holds another key`, { path });
        h = d;
        this.headers.set(rel, h);
      }
      const end = Math.min(offset + length, h.payloadLen);
      this.noteUse(rel, h.headerLen + h.payloadLen);
      if (offset >= end) return Buffer.alloc(0);
      const first = Math.floor(offset / h.blockSize);
      const last = Math.ceil(end / h.blockSize);
      const span = blockSpan(h, first, last);
      const at = h.headerLen + span.start;
      let bytes: Buffer;
      if (probe && at + span.length <= probe.length) {
        bytes = probe.subarray(at, at + span.length);
      } else {
        bytes = Buffer.allocUnsafe(span.length);
        bytes = bytes.subarray(0, (await fh.read(bytes, 0, span.length, at)).bytesRead);
      }
      verifyBlocks(h, first, last, bytes, path);
      return Buffer.from(bytes.subarray(offset - span.start, end - span.start));
    } catch (err) {
      if (err instanceof CacheCorruptEntryError) return this.dropCorrupt(rel, err);
      throw err;
    } finally {
      this.handles.release(slot);
    }
  }

  private parseHeader(file: Buffer, path: string, k: string): EntryHeader {
    const h = decodeHeader(file, path);
    if ("need" in h) throw new CacheCorruptEntryError(`corrupt cache entry ${path}: file ends inside its header`, { path });
    if (h.key !== k) throw new CacheCorruptEntryError(`corrupt cache entry ${path}: holds another key`, { path });
    return h;
  }

  private async loadHeader(rel: string): Promise<EntryHeader> {
    const path = join(this.paths.data, rel);
    const fh = await open(path, "r");
    try {
      let len = HEADER_PROBE;
      for (;;) {
        const buf = Buffer.allocUnsafe(len);
        const d = decodeHeader(buf.subarray(0, (await fh.read(buf, 0, len, 0)).bytesRead), path);
        if (!("need" in d)) return d;
        if (d.need <= len) throw new CacheCorruptEntryError(`corrupt cache entry ${path}: file ends inside its header`, { path });
        len = d.need;
      }
    } finally {
      await fh.close();
    }
  }

  private async openEntry(rel: string) {
    const slot = await this.handles.acquire(rel, join(this.paths.data, rel));
    if (!slot) this.forget(rel);
    return slot;
  }

  private async dropCorrupt(rel: string, err: CacheCorruptEntryError): Promise<undefined> {
    this.counters.corruptDropped++;
    this.onCorrupt?.(err);
    // Another process may have replaced the file with a good copy meanwhile: losing that copy costs a refetch.
    await unlink(join(this.paths.data, rel)).catch(ignoreMissing);
    this.forget(rel);
    return undefined;
  }

  private forget(rel: string): void {
    const slot = this.index.find(rel);
    if (slot >= 0) {
      this.usedBytes -= this.index.size(slot);
      this.index.remove(slot);
    }
    this.headers.delete(rel);
    this.handles.drop(rel);
  }

  /** Records a use; refreshes the file's mtime (its last use for other processes) at most every 30 s. */
  private noteUse(rel: string, size?: number): void {
    const now = preciseNow();
    let slot = this.index.find(rel);
    if (slot < 0) {
      if (size === undefined) return;
      slot = this.index.set(rel, size, now, 0, now);
      if (slot < 0) return;
      this.usedBytes += size;
    }
    this.index.setLastUse(slot, now);
    if (now - this.index.touched(slot) > TOUCH_INTERVAL_MS) {
      this.index.setTouched(slot, now);
      void utimes(join(this.paths.data, rel), now / 1000, now / 1000).catch(() => undefined);
    }
  }

  // ---- eviction ----

  private startEviction(): Promise<EvictResult> {
    if (!this.evictRun) {
      const run = this.runEviction(this.lowWater);
      this.evictRun = run;
      void run
        .finally(() => {
          if (this.evictRun === run) this.evictRun = undefined;
        })
        .catch(() => undefined);
    }
    return this.evictRun;
  }

  private async runEviction(target: number): Promise<EvictResult> {
    if (!(await this.tryLock())) return { evicted: 0, freedBytes: 0, busy: true };
    let evicted = 0;
    let freedBytes = 0;
    try {
      await this.rescan();
      if (this.usedBytes <= target) return { evicted, freedBytes, busy: false };
      const pinned = await this.pinnedBlobs();
      const victims: number[] = [];
      for (const slot of this.index.slots()) if (!pinned.has(this.index.blob(slot))) victims.push(slot);
      victims.sort((a, b) => this.index.lastUse(a) - this.index.lastUse(b));
      const ids = victims.map((slot) => this.index.ticket(slot));
      const added = victims.map((slot) => this.index.addedAt(slot));
      for (let i = 0; i < victims.length; i++) {
        if (this.usedBytes <= target) break;
        const slot = victims[i]!;
        // rewritten by us meanwhile (or forgotten and found again): it is fresh now
        if (!this.index.holds(slot, ids[i]!) || this.index.addedAt(slot) !== added[i]) continue;
        const rel = this.index.rel(slot);
        const size = this.index.size(slot);
        this.forget(rel);
        await unlink(join(this.paths.data, rel)).catch(ignoreMissing);
        evicted++;
        freedBytes += size;
        this.counters.evictions++;
      }
      return { evicted, freedBytes, busy: false };
    } finally {
      await this.unlock();
    }
  }

  /** Blobs pinned by this process or by any live process (stale pin files of dead ones are removed). */
  private async pinnedBlobs(): Promise<Set<string>> {
    await this.pinChain;
    const out = new Set(this.pins.keys());
    for (const name of await readdir(this.paths.pins)) {
      const dot = name.lastIndexOf(".");
      const blob = decodeBlob(name.slice(0, dot));
      const pid = Number(name.slice(dot + 1));
      if (!blob) continue;
      // Our own files are in step with `this.pins` (pinChain settled); others' count while their process lives.
      if (pid === process.pid || isProcessAlive(pid)) {
        out.add(blob);
      } else {
        await unlink(join(this.paths.pins, name)).catch(ignoreMissing);
      }
    }
    return out;
  }

  /** One evictor at a time across processes; a lock left by a dead process is taken over. */
  private async tryLock(): Promise<boolean> {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await writeFile(this.paths.evictLock, `${process.pid}\n`, { flag: "wx" });
        heldLocks.add(this.paths.evictLock);
        return true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      }
      const owner = Number((await readFile(this.paths.evictLock, "utf8").catch(() => "")).trim());
      const stale = owner === process.pid ? !heldLocks.has(this.paths.evictLock) : !isProcessAlive(owner);
      if (!stale) return false;
      await unlink(this.paths.evictLock).catch(ignoreMissing);
    }
    return false;
  }

  private async unlock(): Promise<void> {
    heldLocks.delete(this.paths.evictLock);
    await unlink(this.paths.evictLock).catch(ignoreMissing);
  }

  private pinIo(fn: () => Promise<unknown>): void {
    this.pinChain = this.pinChain.then(fn).then(
      () => undefined,
      () => undefined,
    );
  }

  private assertOpen(): void {
    if (this.closed) throw new CacheClosedError({ dir: this.dir });
  }
}
