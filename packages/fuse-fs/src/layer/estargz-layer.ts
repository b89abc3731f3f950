import type { ChunkCache } from "@lazypull/blob-cache";
import { describeError, hasCode } from "@lazypull/errors";
import { sleep } from "@lazypull/host";
import type { ChunkRef, FileNode, StargzReader } from "@lazypull/stargz-format";
import type { Logger } from "pino";
import { FuseFsError } from "../errors.js";
import type { LayerProgress, LayerState, PrefetchPolicy } from "../types.js";
import { chunkId, coalesce, type ChunkStore } from "./chunk-store.js";
import type { FetchCounters } from "./counters.js";
import { normalisePath, type ReadHint, type ServedLayer } from "./layer.js";
import { isFinal } from "./retry.js";

/** the chunk's own bytes are wrong or too big (fuse-fs's checks and stargz-format's inflate) */
const BAD_CHUNK_CODES = new Set(["FUSEFS_BAD_CHUNK", "FUSEFS_CHUNK_TOO_LARGE", "ESTARGZ_CHUNK_CORRUPT", "ESTARGZ_CHUNK_SIZE_MISMATCH", "ESTARGZ_CHUNK_DIGEST_MISMATCH"]);

/** Failures no later pass can change: the image's bytes are wrong or too big, or the registry said no for good. */
function isPermanent(err: unknown): boolean {
  for (let e = err, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    if (hasCode(e) && BAD_CHUNK_CODES.has(e.code)) return true;
    if (isFinal(e)) return true;
  }
  return false;
}

export interface EstargzLayerOptions {
  digest: string;
  blobSize: number;
  reader: StargzReader;
  store: ChunkStore;
  cache: ChunkCache;
  counters: FetchCounters;
  log: Logger;
  abort: AbortController;
  /** uncompressed bytes fetched ahead of a sequential reader (default 8 MiB) */
  readAheadBytes?: number;
  /** compressed bytes per background request (default 4 MiB) */
  backgroundRequestBytes?: number;
  /**
   * an on-demand fetch smaller than this takes the following chunks of the blob along (default 64 KiB):
   * files of a directory sit together in the blob, and one round trip costs more than a few KiB
   */
  minFetchBytes?: number;
}

/**
 * Measured with the bench (100mbit/20ms-rtt, python and numpy workloads, time to first output):
 * 64 KiB 2.20 s / 6.08 s with 5.9 / 18.6 MB fetched, 256 KiB 2.3–2.8 s / 6.2 s with 7.1 / 22.6 MB,
 * 1 MiB 4.3 s / 8.2 s, 4 MiB 6.8 s / 12.3 s: the reader waits for the whole range, so more is slower.
 */
export const DEFAULT_MIN_FETCH_BYTES = 64 * 1024;

/**
 * A peek reads this many compressed bytes of a file's first member. Debian's python3.11 names its
 * libraries ~73 KB into the file and its `.dynstr` ends at ~107 KB; gzip's default level gives ~74 KB
 * from the first 32 KiB of the member and ~162 KB from 64 KiB.
 */
export const PEEK_BYTES = 64 * 1024;
/**
 * Members smaller than this are not peeked: at 100 Mbit and 20 ms RTT the whole member comes in about
 * the time a peek's own round trip takes.
 */
export const PEEK_MIN_MEMBER_BYTES = 512 * 1024;

/** A layer served lazily from an eStargz (or legacy stargz) blob: tree from the TOC, data by chunk. */
export class EstargzLayer implements ServedLayer {
  readonly digest: string;
  readonly kind: "estargz" | "stargz";
  private state: LayerState = "ready";
  private pinned = false;
  /** every chunk in blob order */
  private readonly ordered: ChunkRef[];
  /** chunks the background fetch gave up on for good (reads still try them, and get the error) */
  private readonly unfetchable = new Set<string>();

  constructor(private readonly o: EstargzLayerOptions) {
    this.digest = o.digest;
    this.kind = o.reader.format;
    this.ordered = o.reader.allChunks();
  }

  /** chunks that follow `last` in the blob, up to `minFetchBytes` of compressed span from `first` */
  private along(first: ChunkRef, last: ChunkRef): ChunkRef[] {
    const budget = this.o.minFetchBytes ?? DEFAULT_MIN_FETCH_BYTES;
    const limit = first.compressedOffset + budget;
    if (last.compressedEnd >= limit) return [];
    let lo = 0;
    let hi = this.ordered.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.ordered[mid]!.compressedOffset < last.compressedEnd) lo = mid + 1;
      else hi = mid;
    }
    const out: ChunkRef[] = [];
    for (let i = lo; i < this.ordered.length && this.ordered[i]!.compressedEnd <= limit; i++) out.push(this.ordered[i]!);
    return out;
  }

  lookup(path: string): FileNode | undefined {
    return this.o.reader.lookup(normalisePath(path));
  }

  readdir(path: string): string[] | undefined {
    return this.o.reader.readdir(normalisePath(path));
  }

  walk(): Iterable<FileNode> {
    return this.o.reader.walk();
  }

  get nodeCount(): number {
    return this.o.reader.nodeCount;
  }

  async read(path: string, offset: number, length: number, hint: ReadHint = {}): Promise<Buffer> {
    const p = normalisePath(path);
    const node = this.o.reader.lookup(p);
    if (!node) throw new FuseFsError("FUSEFS_NOT_FOUND", `no ${p} in layer ${this.digest}`, { digest: this.digest, path: p });
    if (node.type === "dir") throw new FuseFsError("FUSEFS_IS_DIR", `${p} is a directory`, { digest: this.digest, path: p });
    if (node.type !== "reg" || offset >= node.size || length <= 0) return Buffer.alloc(0);
    const len = Math.min(length, node.size - offset);
    const chunks = this.o.reader.chunksFor(p, offset, len);
    const { store } = this.o;
    return store.demand(async () => {
      if (chunks.length > 1 || (chunks.length === 1 && !store.inMemory(chunks[0]!))) {
        await store.ensure(chunks, "demand", undefined, this.along(chunks[0]!, chunks[chunks.length - 1]!));
      }
      if (hint.sequential) this.readAhead(p, offset + len, node.size);
      const parts = await Promise.all(
        chunks.map((c) => {
          const s = Math.max(offset, c.fileOffset) - c.fileOffset;
          const e = Math.min(offset + len, c.fileOffset + c.size) - c.fileOffset;
          return store.slice(c, s, e - s, "demand", hint.sequential === true || c.size <= 1024 * 1024);
        }),
      );
      const out = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      if (out.length !== len) {
        throw new FuseFsError("FUSEFS_BAD_LAYER", `TOC chunks of ${p} cover ${out.length} of ${len} bytes at ${offset}`, {
          digest: this.digest,
          path: p,
          offset,
        });
      }
      return out;
    });
  }

  private readAhead(path: string, from: number, size: number): void {
    const ahead = this.o.readAheadBytes ?? 8 * 1024 * 1024;
    if (ahead <= 0 || from >= size) return;
    const chunks = this.o.reader.chunksFor(path, from, Math.min(ahead, size - from));
    this.o.store.warm(chunks.slice(0, 2));
    this.o.store.ensure(chunks, "demand").catch((err: unknown) => {
      this.o.log.debug({ err, digest: this.digest, path }, "read-ahead failed");
    });
  }

  async prefetchFiles(paths: string[]): Promise<void> {
    const chunks: ChunkRef[] = [];
    for (const path of paths) {
      const p = normalisePath(path);
      const node = this.o.reader.lookup(p);
      if (node?.type === "reg" && node.size > 0) chunks.push(...this.o.reader.chunksFor(p, 0, node.size));
    }
    if (chunks.length > 0) await this.o.store.ensure(chunks, "demand");
  }

  async peekHead(path: string): Promise<Buffer | undefined> {
    const p = normalisePath(path);
    const node = this.o.reader.lookup(p);
    if (node?.type !== "reg" || node.size === 0) return undefined;
    const first = this.o.reader.chunksFor(p, 0, 1)[0];
    if (!first || first.compressedEnd - first.compressedOffset < PEEK_MIN_MEMBER_BYTES) return undefined;
    if (await this.o.store.isStored(first)) return undefined;
    return this.o.store.peek(first, PEEK_BYTES);
  }

  startBackground(policy: PrefetchPolicy): void {
    if (policy === "none") return;
    this.o.cache.pin(this.digest);
    this.pinned = true;
    this.background(policy).catch((err: unknown) => {
      if (this.o.abort.signal.aborted) return;
      this.state = "error";
      this.o.counters.noteError(describeError(err));
      this.o.log.error({ err, digest: this.digest }, "background fetch stopped");
    });
  }

  private async background(policy: PrefetchPolicy): Promise<void> {
    const { reader, store } = this.o;
    const signal = this.o.abort.signal;
    const all = this.ordered;
    if (reader.prefetchEnd > 0) {
      this.state = "prefetching";
      const landmark = all.filter((c) => c.compressedEnd <= reader.prefetchEnd);
      // the prioritised files in one request, ahead of any other background work
      await store.ensure(landmark, "demand", Number.MAX_SAFE_INTEGER).catch((err: unknown) => {
        this.o.log.warn({ err, digest: this.digest }, "landmark prefetch failed; files will load on demand");
      });
    }
    if (policy !== "all") {
      this.state = "ready";
      return;
    }
    this.state = "fetching";
    const runBytes = this.o.backgroundRequestBytes ?? 4 * 1024 * 1024;
    for (let pass = 0; !signal.aborted; pass++) {
      // before even listing what is missing: that walk over every chunk costs main-thread time a
      // starting container's reads need more
      await store.gate.whenQuiet(signal);
      if (signal.aborted) return;
      const missing = (await this.missingChunks(all)).filter((c) => !this.unfetchable.has(chunkId(c)));
      if (missing.length === 0) {
        if (this.unfetchable.size > 0) {
          this.state = "error";
          this.o.log.error({ digest: this.digest, chunks: this.unfetchable.size, lastError: this.o.counters.lastError }, "layer complete except for chunks that cannot be fetched");
          return;
        }
        this.state = "complete";
        this.o.log.info({ digest: this.digest, ...this.o.counters }, "layer complete");
        return;
      }
      let failed = false;
      for (const run of coalesce(missing, runBytes)) {
        if (signal.aborted) return;
        // yields to on-demand reads of the whole mount, and to the quiet after them
        await store.gate.whenQuiet(signal);
        try {
          await store.ensure(run, "background", runBytes);
        } catch (err) {
          if (signal.aborted) return;
          if (!isPermanent(err)) failed = true; // logged by the store; the next pass retries what is still missing
          // a run fails as a whole: find the chunks that are wrong, one by one, and fetch the rest
          else if (run.length === 1) this.unfetchable.add(chunkId(run[0]!));
          else for (const c of run) await store.ensure([c], "background", runBytes).catch((e: unknown) => (isPermanent(e) ? this.unfetchable.add(chunkId(c)) : (failed = true)));
        }
      }
      if (failed) await sleep(Math.min(30_000, 1000 * 2 ** pass), signal);
    }
  }

  private async missingChunks(all: ChunkRef[]): Promise<ChunkRef[]> {
    const out: ChunkRef[] = [];
    const step = 256;
    for (let i = 0; i < all.length; i += step) {
      const part = all.slice(i, i + step);
      const local = await Promise.all(part.map((c) => this.o.store.isLocal(c)));
      part.forEach((c, j) => {
        if (!local[j]) out.push(c);
      });
    }
    return out;
  }

  progress(): Omit<LayerProgress, "dir" | "overlayDir"> {
    return this.o.counters.progress({ digest: this.digest, state: this.state, kind: this.kind, bytesTotal: this.o.blobSize });
  }

  flush(): Promise<void> {
    return this.o.store.flush();
  }

  close(): void {
    this.o.abort.abort();
    this.o.store.dropMemory();
    if (this.pinned) this.o.cache.unpin(this.digest);
    this.pinned = false;
  }
}
