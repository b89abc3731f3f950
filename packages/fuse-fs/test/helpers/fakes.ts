import { createHash } from "node:crypto";
import { gunzip, gzipSync } from "node:zlib";
import type { CacheKey, CacheStats, ChunkCache } from "@lazypull/blob-cache";
import type { BlobSource, ByteRange, ImageReference } from "@lazypull/registry-client";
import type { ChunkRef } from "@lazypull/stargz-format";

/** Small in-memory stand-ins for the contracts of blob-cache and registry-client (unit specs only). */
export class MapCache implements ChunkCache {
  readonly map = new Map<string, Buffer>();
  puts = 0;
  pins = new Map<string, number>();
  /** what stats() reports as the cache's cap */
  maxBytes = 2 ** 40;
  private k(key: CacheKey) {
    return `${key.blob}|${key.id}`;
  }
  async get(key: CacheKey) {
    return this.map.get(this.k(key));
  }
  async read(key: CacheKey, offset: number, length: number) {
    return this.map.get(this.k(key))?.subarray(offset, offset + length);
  }
  async has(key: CacheKey) {
    return this.map.has(this.k(key));
  }
  async put(key: CacheKey, data: Buffer) {
    this.puts += 1;
    this.map.set(this.k(key), Buffer.from(data));
  }
  async getOrFetch(key: CacheKey, fetch: () => Promise<Buffer>) {
    const hit = await this.get(key);
    if (hit) return hit;
    const data = await fetch();
    await this.put(key, data);
    return data;
  }
  pin(blob: string) {
    this.pins.set(blob, (this.pins.get(blob) ?? 0) + 1);
  }
  unpin(blob: string) {
    this.pins.set(blob, (this.pins.get(blob) ?? 0) - 1);
  }
  stats(): CacheStats {
    return { entries: this.map.size, bytes: 0, maxBytes: this.maxBytes, memoryBytes: 0, hits: 0, misses: 0, evictions: 0, corruptDropped: 0 };
  }
  async close() {}
}

export class BufferSource implements BlobSource {
  calls: ByteRange[] = [];
  /** fail this many upcoming calls */
  failNext = 0;
  /** resolve fetches only when released (to hold requests in flight) */
  gate: Promise<void> | undefined;
  constructor(public blob: Buffer) {}
  async fetchRange(_ref: ImageReference, _digest: string, range: ByteRange): Promise<Buffer> {
    this.calls.push(range);
    if (this.gate) await this.gate;
    if (this.failNext > 0) {
      this.failNext -= 1;
      throw new Error("connection reset (fake)");
    }
    const from = this.badUntilReported ?? this.blob;
    return Buffer.from(from.subarray(range.offset, range.offset + range.length));
  }
  async fetchRanges(ref: ImageReference, digest: string, ranges: ByteRange[]) {
    return Promise.all(ranges.map((r) => this.fetchRange(ref, digest, r)));
  }
  async fetchBlob(): Promise<NodeJS.ReadableStream> {
    throw new Error("not used");
  }
  /** bytes served until the first report (a mirror with wrong bytes), then `blob` (the registry) */
  badUntilReported: Buffer | undefined;
  reports = 0;
  reportBadBytes(): boolean {
    this.reports++;
    const had = this.badUntilReported !== undefined;
    this.badUntilReported = undefined;
    return had;
  }
}

export const fakeRef: ImageReference = { registry: "example.test", repository: "r", toString: () => "example.test/r" };

/** A blob of gzip members, one per chunk, with the ChunkRefs that describe it. */
export function chunkedBlob(datas: Buffer[], path = "f"): { blob: Buffer; chunks: ChunkRef[] } {
  const members = datas.map((d) => gzipSync(d));
  const chunks: ChunkRef[] = [];
  let off = 0;
  let fileOff = 0;
  members.forEach((m, i) => {
    const data = datas[i]!;
    chunks.push({
      path,
      fileOffset: fileOff,
      size: data.length,
      compressedOffset: off,
      compressedEnd: off + m.length,
      innerOffset: 0,
      chunkDigest: `sha256:${createHash("sha256").update(data).digest("hex")}`,
    });
    off += m.length;
    fileOff += data.length;
  });
  return { blob: Buffer.concat(members), chunks };
}

/** inflate + verify, as stargz-format's reader does */
export function fakeInflate(c: ChunkRef, compressed: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    gunzip(compressed, (err, out) => {
      if (err) return reject(err);
      const d = `sha256:${createHash("sha256").update(out).digest("hex")}`;
      if (d !== c.chunkDigest) return reject(Object.assign(new Error("digest mismatch"), { code: "ESTARGZ_CHUNK_DIGEST_MISMATCH" }));
      resolve(out);
    }),
  );
}
