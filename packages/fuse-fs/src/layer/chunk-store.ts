import type { CacheKey, ChunkCache } from "@lazypull/blob-cache";
import type { BlobSource, ImageReference } from "@lazypull/registry-client";
import { inflatePrefix, type ChunkRef } from "@lazypull/stargz-format";
import pLimit from "p-limit";
import type { Logger } from "pino";
import { describeError, hasCode } from "@lazypull/errors";
import { FuseFsError } from "../errors.js";
import { ByteLru } from "./byte-lru.js";
import type { FetchCounters } from "./counters.js";
import { DemandGate } from "./demand-gate.js";
import { processFetchBudget, type FetchBudget } from "./fetch-budget.js";
import { isLargeChunk, LARGE_CHUNK_MEMORY, segmentsOf, streamChunk } from "./large-chunk.js";
import { defaultRetryPolicy, withAttemptSignal, withRetries, type RetryPolicy } from "./retry.js";

/** demand: a reader waits; background: yields to demand (waits until no reader is waiting). */
export type Priority = "demand" | "background";

export interface ChunkStoreOptions {
  ref: ImageReference;
  digest: string;
  source: BlobSource;
  cache: ChunkCache;
  /** inflate a chunk's member bytes and verify its digest (off the main thread) */
  inflate(chunk: ChunkRef, compressed: Buffer): Promise<Buffer>;
  counters: FetchCounters;
  log: Logger;
  retry: RetryPolicy;
  /** one range request never spans more than this many compressed bytes (default 16 MiB) */
  maxRequestBytes?: number;
  /** inflated chunks kept in memory, shared by the layers of a mount (default: 64 MiB of this store's own) */
  memory?: ByteLru<string>;
  /** on-demand reads of the whole mount, which background fetching yields to (default: this store's own, no silence) */
  gate?: DemandGate;
  /** bytes the fetches of every store may hold at once (default: one budget per process) */
  budget?: FetchBudget;
  signal: AbortSignal;
}

/** Cache id of a chunk: its member's compressed offset (plus the inner offset for shared members). */
export function chunkId(c: ChunkRef): string {
  return c.innerOffset ? `${c.compressedOffset}+${c.innerOffset}` : String(c.compressedOffset);
}

/**
 * Members per request at most. A run is inflated, kept and written to the cache as one batch; 4 MiB of
 * a small-file layer is ~20,000 members, whose buffers and promises all alive at once made the
 * daemon's memory spike during background fetching.
 */
export const MAX_RUN_CHUNKS = 1024;
/**
 * Inflated bytes per run at most, whatever the compressed span: a member may inflate 1000:1, so 4 MiB
 * of compressed chunks could otherwise be gigabytes in memory.
 */
export const MAX_RUN_INFLATED_BYTES = 32 * 1024 * 1024;
/** Compressed bytes per run at most, whatever the caller asks (a landmark region may be any size). */
export const MAX_RUN_BYTES = 64 * 1024 * 1024;

/** Groups chunks (sorted by blob offset) into runs whose members touch, each run one range request. */
export function coalesce(chunks: ChunkRef[], maxBytesIn: number, maxChunks = MAX_RUN_CHUNKS): ChunkRef[][] {
  const maxBytes = Math.min(maxBytesIn, MAX_RUN_BYTES);
  const sorted = [...chunks].sort((a, b) => a.compressedOffset - b.compressedOffset || a.innerOffset - b.innerOffset);
  const runs: ChunkRef[][] = [];
  let run: ChunkRef[] = [];
  let start = 0;
  let end = 0;
  let inflated = 0;
  for (const c of sorted) {
    const fits =
      run.length > 0 &&
      run.length < maxChunks &&
      c.compressedOffset <= end &&
      Math.max(end, c.compressedEnd) - start <= maxBytes &&
      inflated + c.innerOffset + c.size <= MAX_RUN_INFLATED_BYTES;
    if (fits) {
      run.push(c);
      end = Math.max(end, c.compressedEnd);
      inflated += c.innerOffset + c.size;
      continue;
    }
    if (run.length > 0) runs.push(run);
    run = [c];
    start = c.compressedOffset;
    end = c.compressedEnd;
    inflated = c.innerOffset + c.size;
  }
  if (run.length > 0) runs.push(run);
  return runs;
}

/** What a run holds in memory while in flight: its compressed range and its inflated chunks. */
function runMemory(run: ChunkRef[]): number {
  const start = run[0]!.compressedOffset;
  const end = Math.max(...run.map((c) => c.compressedEnd));
  return end - start + run.reduce((n, c) => n + c.innerOffset + c.size, 0);
}

/**
 * Inflated chunks of one blob: memory → blob-cache → registry. Concurrent readers of a chunk share one
 * fetch, neighbouring missing chunks go in one range request, and bytes are stored only after their
 * digest matched.
 */
/** what a peek inflates at most, whatever the member would give */
const PEEK_MAX_INFLATED = 1024 * 1024;
/** cache writes in flight per fetched run */
const CACHE_WRITERS = 8;
/**
 * What a large chunk's own cache entry holds once all its segments are in and its digest matched: the
 * segments are never read without it, so a chunk cut short by a crash or a bad digest is never served.
 */
const LARGE_MARKER = Buffer.from("lazypull large chunk v1\n");

export class ChunkStore {
  private readonly inflight = new Map<string, Promise<Buffer>>();
  private readonly loading = new Map<string, Promise<Buffer | undefined>>();
  /** large chunks being streamed into the cache (see large-chunk.ts) */
  private readonly large = new Map<string, Promise<void>>();
  /** cache writes of fetched runs still in flight */
  private readonly writes = new Set<Promise<void>>();
  private readonly budget: FetchBudget;
  /** this blob's view of the (shared) memory LRU */
  private readonly mem: { get(id: string): Buffer | undefined; has(id: string): boolean; set(id: string, b: Buffer): void; clear(): void };
  private readonly maxRequestBytes: number;
  readonly gate: DemandGate;

  constructor(private readonly o: ChunkStoreOptions) {
    const lru = o.memory ?? new ByteLru<string>(64 * 1024 * 1024);
    const prefix = `${o.digest}|`;
    this.mem = {
      get: (id) => lru.get(prefix + id),
      has: (id) => lru.has(prefix + id),
      set: (id, b) => lru.set(prefix + id, b),
      clear: () => lru.deletePrefix(prefix),
    };
    this.maxRequestBytes = o.maxRequestBytes ?? 16 * 1024 * 1024;
    this.gate = o.gate ?? new DemandGate(0);
    this.budget = o.budget ?? processFetchBudget;
  }

  private key(c: ChunkRef): CacheKey {
    return { blob: this.o.digest, id: chunkId(c) };
  }

  private segmentKey(c: ChunkRef, index: number): CacheKey {
    return { blob: this.o.digest, id: `${chunkId(c)}#${index}` };
  }

  /** true when the chunk needs no network (in memory, in flight, or cached) */
  async isLocal(c: ChunkRef): Promise<boolean> {
    const id = chunkId(c);
    if (this.mem.has(id) || this.inflight.has(id) || this.large.has(id)) return true;
    return this.o.cache.has(this.key(c));
  }

  /** Runs `fn` as an on-demand read: background fetching (of every layer sharing the gate) waits. */
  demand<T>(fn: () => Promise<T>): Promise<T> {
    return this.gate.demand(fn);
  }

  /**
   * Makes every given chunk local; the missing ones are fetched in coalesced requests. `along` chunks
   * (neighbours worth having) join those requests when missing, but are not waited for.
   */
  async ensure(chunks: ChunkRef[], prio: Priority, maxRequestBytes = this.maxRequestBytes, along: ChunkRef[] = []): Promise<void> {
    const wanted = new Set(chunks.map(chunkId));
    const unique = [...new Map([...chunks, ...along].map((c) => [chunkId(c), c])).values()];
    // Background work yields to on-demand reads here, before its chunks are marked in flight: once
    // they are, a reader needing one waits for this fetch, so the fetch must never wait for readers.
    if (prio === "background") await this.gate.whenIdle();
    const local = await Promise.all(unique.map((c) => this.isLocal(c)));
    // Re-check in-flight after the awaits: another reader may have started the same chunk meanwhile.
    const missing = unique.filter((c, i) => !local[i] && !this.inflight.has(chunkId(c)) && !this.large.has(chunkId(c)));
    const small: ChunkRef[] = [];
    for (const c of missing) {
      if (!isLargeChunk(c)) small.push(c);
      // a large chunk streams on its own: for a reader, never as an `along` neighbour
      else if (wanted.has(chunkId(c))) void this.startLarge(c, prio).catch(() => undefined); // awaited below, or by its reader
    }
    // each run's promises are in `inflight`, where readers (and the await below) find them; a run of
    // `along` chunks alone is no request anyone needs (a cache hit would otherwise fetch its neighbours)
    for (const run of coalesce(small, maxRequestBytes)) if (run.some((c) => wanted.has(chunkId(c)))) void this.startRun(run, prio);
    await Promise.all(chunks.flatMap((c) => this.inflight.get(chunkId(c)) ?? this.large.get(chunkId(c)) ?? []));
  }

  /** true when the chunk is in memory or in the cache (not merely being fetched) */
  async isStored(c: ChunkRef): Promise<boolean> {
    return this.mem.has(chunkId(c)) || this.o.cache.has(this.key(c));
  }

  /**
   * The first bytes of a chunk, inflated from only the first `compressedBytes` of its member: one
   * attempt, no retry, nothing verified. For a caller that wants a hint of what the chunk holds without
   * waiting for all of it; never served, never cached.
   */
  async peek(c: ChunkRef, compressedBytes: number): Promise<Buffer | undefined> {
    if (c.innerOffset > PEEK_MAX_INFLATED) return undefined;
    const length = Math.min(compressedBytes, c.compressedEnd - c.compressedOffset);
    const cut = await this.fetchRangeOnce(c.compressedOffset, length, "demand");
    const where = { digest: this.o.digest, path: c.path, fileOffset: c.fileOffset };
    const out = await inflatePrefix(cut, c.innerOffset + PEEK_MAX_INFLATED, where, { cut: true });
    return out.subarray(c.innerOffset, c.innerOffset + PEEK_MAX_INFLATED);
  }

  /** true when the chunk is in memory (no await needed) */
  inMemory(c: ChunkRef): boolean {
    return this.mem.has(chunkId(c));
  }

  /**
   * bytes [start, start+length) of a chunk's uncompressed data. With `whole`, a cache hit loads the
   * whole chunk into memory (a sequential reader will want the rest of it next).
   */
  async slice(c: ChunkRef, start: number, length: number, prio: Priority = "demand", whole = false): Promise<Buffer> {
    if (isLargeChunk(c)) return this.sliceLarge(c, start, length, prio);
    const id = chunkId(c);
    const m = this.mem.get(id);
    if (m) return m.subarray(start, start + length);
    const pending = this.inflight.get(id);
    if (pending) return (await pending).subarray(start, start + length);
    const failed = (err: unknown) => {
      this.o.log.warn({ err, digest: this.o.digest, chunk: id }, "cache read failed; refetching");
      return undefined;
    };
    if (whole) {
      const all = await this.loadWhole(c);
      if (all) return all.subarray(start, start + length);
    } else {
      const cached = await this.o.cache.read(this.key(c), start, length).catch(failed);
      if (cached && cached.length === length) return cached;
    }
    const again = this.inflight.get(id) ?? this.startRun([c], prio)[0]!;
    return (await again).subarray(start, start + length);
  }

  /** a cached chunk loaded whole into memory; concurrent callers share one cache read */
  private loadWhole(c: ChunkRef): Promise<Buffer | undefined> {
    const id = chunkId(c);
    const m = this.mem.get(id);
    if (m) return Promise.resolve(m);
    let p = this.loading.get(id);
    if (!p) {
      p = this.o.cache
        .get(this.key(c))
        .then(
          (all) => {
            if (!all || all.length !== c.size) return undefined;
            this.mem.set(id, all);
            return all;
          },
          (err: unknown) => {
            this.o.log.warn({ err, digest: this.o.digest, chunk: id }, "cache read failed; refetching");
            return undefined;
          },
        )
        .finally(() => this.loading.delete(id));
      this.loading.set(id, p);
    }
    return p;
  }

  /** Brings cached chunks into memory ahead of a sequential reader (no network). */
  warm(chunks: ChunkRef[]): void {
    for (const c of chunks) {
      const id = chunkId(c);
      if (!isLargeChunk(c) && !this.mem.has(id) && !this.inflight.has(id)) void this.loadWhole(c);
    }
  }

  /** bytes of a large chunk, read from its cached segments (fetched first when missing) */
  private async sliceLarge(c: ChunkRef, start: number, length: number, prio: Priority): Promise<Buffer> {
    for (let attempt = 0; ; attempt++) {
      const pending = this.large.get(chunkId(c));
      if (pending) await pending;
      else if (attempt > 0 || !(await this.o.cache.has(this.key(c)))) await this.startLarge(c, prio);
      const segments = segmentsOf(c, start, length);
      const parts = await Promise.all(segments.map((s) => this.o.cache.read(this.segmentKey(c, s.index), s.from, s.to - s.from).catch(() => undefined)));
      if (parts.every((p, i) => p !== undefined && p.length === segments[i]!.to - segments[i]!.from)) {
        return parts.length === 1 ? parts[0]! : Buffer.concat(parts as Buffer[]);
      }
      // a segment was evicted since the chunk was stored: fetch the chunk again, once
      if (attempt > 0) {
        throw new FuseFsError("FUSEFS_FETCH_FAILED", `cached segments of ${c.path}@${c.fileOffset} in ${this.o.digest} went missing twice`, {
          digest: this.o.digest,
          path: c.path,
          fileOffset: c.fileOffset,
        });
      }
    }
  }

  private startLarge(c: ChunkRef, prio: Priority): Promise<void> {
    const id = chunkId(c);
    const existing = this.large.get(id);
    if (existing) return existing;
    const p = this.fetchLarge(c, prio);
    this.large.set(id, p);
    const forget = () => {
      if (this.large.get(id) === p) this.large.delete(id);
    };
    p.then(forget, forget);
    return p;
  }

  /** Streams a large chunk into the cache: bounded memory whatever its size or compression ratio. */
  private async fetchLarge(c: ChunkRef, prio: Priority): Promise<void> {
    const { counters, log, signal, cache } = this.o;
    const digest = this.o.digest;
    const where = { digest, path: c.path, fileOffset: c.fileOffset, size: c.size };
    const maxBytes = cache.stats().maxBytes;
    // its segments must all be in the cache at once; a chunk that cannot be is refused, not thrashed
    if (c.size > maxBytes / 2) {
      throw new FuseFsError(
        "FUSEFS_CHUNK_TOO_LARGE",
        `${c.path}@${c.fileOffset} in ${digest} is one chunk of ${c.size} bytes, more than half the blob cache (${maxBytes} bytes); raise the cache size to read it`,
        { ...where, cacheMaxBytes: maxBytes },
      );
    }
    const fetchPiece = (offset: number, length: number) =>
      withRetries({ digest, offset, length }, this.o.retry, { counters, log, signal }, () => this.fetchRangeOnce(offset, length, prio));
    const putSegment = async (index: number, data: Buffer) => {
      if (signal.aborted) throw new FuseFsError("FUSEFS_CLOSED", `layer ${digest} was closed while fetching`, where);
      try {
        await cache.put(this.segmentKey(c, index), data);
      } catch (err) {
        throw new FuseFsError("FUSEFS_FETCH_FAILED", `cannot store ${c.path}@${c.fileOffset} of ${digest} in the cache: ${describeError(err)}`, where, { cause: err });
      }
    };
    const release = await this.budget.acquire(LARGE_CHUNK_MEMORY, prio);
    try {
      // pieces are retried one by one; a digest mismatch (a flipped byte in transit) restarts the chunk once
      for (let attempt = 1; ; attempt++) {
        try {
          await streamChunk({ chunk: c, digest, fetchPiece, putSegment });
          break;
        } catch (err) {
          if (hasCode(err, "FUSEFS_BAD_CHUNK")) this.reportBadBytes();
          if (!hasCode(err, "FUSEFS_BAD_CHUNK") || attempt >= 2 || signal.aborted) throw err;
          counters.noteError(describeError(err));
          log.warn({ err, ...where }, "large chunk failed its check; fetching it again");
        }
      }
      await cache.put(this.key(c), LARGE_MARKER);
    } finally {
      release();
    }
  }

  private startRun(run: ChunkRef[], prio: Priority): Promise<Buffer>[] {
    const all = this.fetchRun(run, prio);
    return run.map((c, i) => {
      const id = chunkId(c);
      const p = all.then((bufs) => bufs[i]!);
      this.inflight.set(id, p);
      const forget = () => {
        if (this.inflight.get(id) === p) this.inflight.delete(id);
      };
      p.then(forget, forget);
      return p;
    });
  }

  /**
   * One attempt at compressed bytes [offset, offset+length) of the blob, counted; an on-demand attempt
   * is aborted after the policy's timeout (background ones may be slow). Retries are the caller's.
   */
  private async fetchRangeOnce(offset: number, length: number, prio: Priority): Promise<Buffer> {
    const timeout = prio === "demand" ? (this.o.retry.attemptTimeoutMs ?? defaultRetryPolicy.attemptTimeoutMs) : undefined;
    const buf = await withAttemptSignal(this.o.signal, timeout, (s) => this.o.source.fetchRange(this.o.ref, this.o.digest, { offset, length }, s));
    this.o.counters.noteRequest(buf.length);
    if (buf.length !== length) {
      throw new FuseFsError("FUSEFS_FETCH_FAILED", `short range: got ${buf.length} of ${length} bytes`, { digest: this.o.digest, offset, length });
    }
    return buf;
  }

  /**
   * Readers get a run's chunks as soon as they are inflated and verified; the cache writes follow in
   * the background (measured: 3–58 ms per fetch when readers waited for them). The run's share of the
   * fetch budget is held until its writes are done, so memory stays bounded as before.
   */
  private async fetchRun(run: ChunkRef[], prio: Priority): Promise<Buffer[]> {
    const release = await this.budget.acquire(runMemory(run), prio);
    let datas: Buffer[];
    try {
      datas = await this.fetchRunWithin(run, prio);
    } catch (err) {
      release();
      throw err;
    }
    run.forEach((c, i) => this.mem.set(chunkId(c), datas[i]!));
    const writing = this.writeRun(run, datas).finally(release);
    this.writes.add(writing);
    void writing.finally(() => this.writes.delete(writing));
    return datas;
  }

  /**
   * Waits for the cache writes in flight now (a clean close keeps what was fetched). Not for later ones:
   * background fetching may keep adding writes, and a close must not wait for a whole layer.
   */
  async flush(): Promise<void> {
    await Promise.all([...this.writes]);
  }

  private async writeRun(run: ChunkRef[], datas: Buffer[]): Promise<void> {
    const { log } = this.o;
    // A run of thousands of small files would otherwise be thousands of cache writes at once, each
    // with its temp file, handle and buffers alive: a few at a time keep memory flat.
    const limit = pLimit(CACHE_WRITERS);
    await Promise.all(
      run.map((c, i) =>
        limit(async () => {
          // written even when the layer was closed meanwhile (a released lease): the bytes are fetched
          // and verified, and the next run would fetch them again; only a closed cache stops it
          try {
            await this.o.cache.put(this.key(c), datas[i]!);
          } catch (err) {
            if (hasCode(err, "BLOBCACHE_CLOSED")) return;
            log.warn({ err, digest: this.o.digest, chunk: chunkId(c) }, "cache put failed; serving from memory");
          }
        }),
      ),
    );
  }

  private async fetchRunWithin(run: ChunkRef[], prio: Priority): Promise<Buffer[]> {
    const start = run[0]!.compressedOffset;
    const end = Math.max(...run.map((c) => c.compressedEnd));
    const what = { digest: this.o.digest, offset: start, length: end - start };
    const { counters, log, signal } = this.o;
    const datas = await withRetries(what, this.o.retry, { counters, log, signal }, async () => {
      const buf = await this.fetchRangeOnce(start, end - start, prio);
      try {
        return await Promise.all(run.map((c) => this.o.inflate(c, buf.subarray(c.compressedOffset - start, c.compressedEnd - start))));
      } catch (err) {
        // the fetch succeeded and the bytes do not inflate or verify: if a registries.conf mirror sent
        // them, the retry should ask someone else
        this.reportBadBytes();
        throw err;
      }
    });
    return datas;
  }

  dropMemory(): void {
    this.mem.clear();
  }

  /** Tells the source that bytes it sent failed their check (not a failed transfer: those never got here). */
  private reportBadBytes(): void {
    if (this.o.source.reportBadBytes?.(this.o.ref, this.o.digest)) {
      this.o.log.warn({ digest: this.o.digest }, "a registry mirror sent bytes that failed their check; asking the next source");
    }
  }
}
