import type { CacheKey, ChunkCache } from "@lazypull/blob-cache";
import type { BlobSource, ImageReference } from "@lazypull/registry-client";
import type { ChunkRef } from "@lazypull/stargz-format";
import type { Logger } from "pino";
import { hasCode } from "@lazypull/errors";
import { FuseFsError } from "../errors.js";
import { ByteLru } from "./byte-lru.js";
import type { FetchCounters } from "./counters.js";
import { DemandGate } from "./demand-gate.js";
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

/** Groups chunks (sorted by blob offset) into runs whose members touch, each run one range request. */
export function coalesce(chunks: ChunkRef[], maxBytes: number, maxChunks = MAX_RUN_CHUNKS): ChunkRef[][] {
  const sorted = [...chunks].sort((a, b) => a.compressedOffset - b.compressedOffset || a.innerOffset - b.innerOffset);
  const runs: ChunkRef[][] = [];
  let run: ChunkRef[] = [];
  let start = 0;
  let end = 0;
  for (const c of sorted) {
    if (run.length > 0 && run.length < maxChunks && c.compressedOffset <= end && Math.max(end, c.compressedEnd) - start <= maxBytes) {
      run.push(c);
      end = Math.max(end, c.compressedEnd);
      continue;
    }
    if (run.length > 0) runs.push(run);
    run = [c];
    start = c.compressedOffset;
    end = c.compressedEnd;
  }
  if (run.length > 0) runs.push(run);
  return runs;
}

/**
 * Inflated chunks of one blob: memory → blob-cache → registry. Concurrent readers of a chunk share one
 * fetch, neighbouring missing chunks go in one range request, and bytes are stored only after their
 * digest matched.
 */
/** cache writes in flight per fetched run */
const CACHE_WRITERS = 8;

export class ChunkStore {
  private readonly inflight = new Map<string, Promise<Buffer>>();
  private readonly loading = new Map<string, Promise<Buffer | undefined>>();
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
  }

  private key(c: ChunkRef): CacheKey {
    return { blob: this.o.digest, id: chunkId(c) };
  }

  /** true when the chunk needs no network (in memory, in flight, or cached) */
  async isLocal(c: ChunkRef): Promise<boolean> {
    const id = chunkId(c);
    if (this.mem.has(id) || this.inflight.has(id)) return true;
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
    const unique = [...new Map([...chunks, ...along].map((c) => [chunkId(c), c])).values()];
    // Background work yields to on-demand reads here, before its chunks are marked in flight: once
    // they are, a reader needing one waits for this fetch, so the fetch must never wait for readers.
    if (prio === "background") await this.gate.whenIdle();
    const local = await Promise.all(unique.map((c) => this.isLocal(c)));
    // Re-check in-flight after the awaits: another reader may have started the same chunk meanwhile.
    const missing = unique.filter((c, i) => !local[i] && !this.inflight.has(chunkId(c)));
    for (const run of coalesce(missing, maxRequestBytes)) this.startRun(run, prio);
    await Promise.all(chunks.map((c) => this.inflight.get(chunkId(c))));
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
      if (!this.mem.has(id) && !this.inflight.has(id)) void this.loadWhole(c);
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

  private async fetchRun(run: ChunkRef[], prio: Priority): Promise<Buffer[]> {
    const start = run[0]!.compressedOffset;
    const end = Math.max(...run.map((c) => c.compressedEnd));
    const what = { digest: this.o.digest, offset: start, length: end - start };
    const { counters, log, signal } = this.o;
    const datas = await withRetries(what, this.o.retry, { counters, log, signal }, async () => {
      const timeout = prio === "demand" ? (this.o.retry.attemptTimeoutMs ?? defaultRetryPolicy.attemptTimeoutMs) : undefined;
      const buf = await withAttemptSignal(signal, timeout, (s) => this.o.source.fetchRange(this.o.ref, this.o.digest, { offset: start, length: end - start }, s));
      counters.noteRequest(buf.length);
      if (buf.length !== end - start) {
        throw new FuseFsError("FUSEFS_FETCH_FAILED", `short range: got ${buf.length} of ${end - start} bytes`, what);
      }
      return Promise.all(
        run.map((c) => this.o.inflate(c, buf.subarray(c.compressedOffset - start, c.compressedEnd - start))),
      );
    });
    run.forEach((c, i) => this.mem.set(chunkId(c), datas[i]!));
    // A run of thousands of small files would otherwise be thousands of cache writes at once, each
    // with its temp file, handle and buffers alive: a few at a time keep memory flat.
    let next = 0;
    const writer = async () => {
      for (let i = next++; i < run.length; i = next++) {
        const c = run[i]!;
        // a layer being closed (shutdown, release) keeps nothing: its cache may already be closed
        if (signal.aborted) return;
        try {
          await this.o.cache.put(this.key(c), datas[i]!);
        } catch (err) {
          if (signal.aborted || hasCode(err, "BLOBCACHE_CLOSED")) return;
          log.warn({ err, digest: this.o.digest, chunk: chunkId(c) }, "cache put failed; serving from memory");
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(CACHE_WRITERS, run.length) }, writer));
    return datas;
  }

  dropMemory(): void {
    this.mem.clear();
  }
}
