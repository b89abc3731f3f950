import { createHash, type Hash } from "node:crypto";
import { mkdtemp, open, rm } from "node:fs/promises";
import { createWriteStream } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import { Readable, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip, gzip } from "node:zlib";
import { FileByteSource, StreamByteSource } from "./byte-source.js";
import { StargzError } from "./errors.js";
import { estargzFooter } from "./footer.js";
import { decompressedTar } from "./input.js";
import { emptyHeader, encodeHeader, END_OF_ARCHIVE, isPaxSparse, padding, type TarHeader } from "./tar/header.js";
import { readTar } from "./tar/reader.js";
import {
  formatModtime,
  LANDMARK_CONTENTS,
  NO_PREFETCH_LANDMARK,
  normalizeName,
  PREFETCH_LANDMARK,
  serializeToc,
  sha256,
  TOC_TAR_NAME,
} from "./toc.js";
import type { ConvertOptions, ConvertResult, TocEntry } from "./types.js";

export const DEFAULT_CHUNK_SIZE = 4 << 20;
/**
 * A chunk bigger than this is compressed as a stream, in pieces of this size, instead of as one
 * buffer: the writer's memory stays bounded whatever `chunkSize` and file sizes are.
 */
export const STREAM_MEMBER_BYTES = 16 << 20;
const EMPTY_DIGEST = sha256(Buffer.alloc(0));

/** What convertToEstargz returns, plus where the TOC member starts. */
export interface ConvertResultDetail extends ConvertResult {
  tocOffset: number;
  /** compressed bytes of the TOC member (from `tocOffset` to the footer) */
  tocLength: number;
  footerSize: number;
  /** prioritised paths that were not in the input */
  missingPrioritized: string[];
}

function gzipAsync(buf: Buffer, level: number): Promise<Buffer> {
  // One output buffer big enough for the whole member saves a pool round trip per 16 KiB of output.
  const chunkSize = Math.min(1 << 20, Math.max(16 * 1024, buf.length + 1024));
  return new Promise((resolve, reject) => gzip(buf, { level, chunkSize }, (err, out) => (err ? reject(err) : resolve(out))));
}

/**
 * Gzip members compressed concurrently on the libuv pool, written strictly in order. Each member's
 * TOC entries learn their offset when the member reaches the output.
 */
class MemberPipeline {
  private raw: Buffer[] = [];
  private rawLen = 0;
  private starts: TocEntry[] = [];
  private readonly queue: Array<{ out: Promise<Buffer>; starts: TocEntry[]; rawLen: number }> = [];
  private queuedBytes = 0;
  private readonly diffHash = createHash("sha256");
  private readonly blobHash = createHash("sha256");
  uncompressedSize = 0;
  written = 0;
  private outputError: Error | undefined;
  private wakeOnError: ((err: Error) => void) | undefined;

  constructor(
    private readonly output: Writable,
    private readonly level: number,
    private readonly maxInflight: number,
    private readonly maxQueuedBytes: number,
  ) {
    output.on("error", (err) => {
      this.outputError = err;
      this.wakeOnError?.(err);
    });
  }

  append(buf: Buffer): void {
    if (buf.length === 0) return;
    this.raw.push(buf);
    this.rawLen += buf.length;
    this.diffHash.update(buf);
    this.uncompressedSize += buf.length;
  }

  /** `entry.offset` becomes the start of the member that the next `append` opens (call right after `closeMember`). */
  startsHere(entry: TocEntry): void {
    this.starts.push(entry);
  }

  async closeMember(): Promise<void> {
    if (this.rawLen === 0) return;
    const out = gzipAsync(this.raw.length === 1 ? this.raw[0]! : Buffer.concat(this.raw, this.rawLen), this.level);
    out.catch(() => undefined); // observed when its turn comes
    this.queue.push({ out, starts: this.starts, rawLen: this.rawLen });
    this.queuedBytes += this.rawLen;
    this.raw = [];
    this.rawLen = 0;
    this.starts = [];
    while (this.queue.length > this.maxInflight || this.queuedBytes > this.maxQueuedBytes) await this.writeHead();
  }

  private async writeHead(): Promise<void> {
    const item = this.queue.shift()!;
    this.queuedBytes -= item.rawLen;
    const buf = await item.out;
    for (const e of item.starts) e.offset = this.written;
    await this.write(buf);
  }

  async write(buf: Buffer): Promise<void> {
    if (this.outputError) throw this.outputError;
    this.blobHash.update(buf);
    this.written += buf.length;
    if (!this.output.write(buf)) {
      await new Promise<void>((resolve, reject) => {
        this.wakeOnError = reject;
        this.output.once("drain", () => {
          this.wakeOnError = undefined;
          resolve();
        });
      });
    }
  }

  async drain(): Promise<void> {
    await this.closeMember();
    while (this.queue.length) await this.writeHead();
  }

  /**
   * Writes one chunk of `size` bytes as its own gzip member, compressed as a stream: what is queued is
   * written first (so the member's offset is known), then `read` is asked for the data piece by piece.
   * Returns the chunk's digest.
   */
  async streamMember(entry: TocEntry, size: number, read: ReadBody, onData: (b: Buffer) => void): Promise<string> {
    await this.drain();
    entry.offset = this.written;
    const gz = createGzip({ level: this.level, chunkSize: 1 << 20 });
    const hash = createHash("sha256");
    const produce = async () => {
      try {
        for (let done = 0; done < size; ) {
          const n = Math.min(STREAM_MEMBER_BYTES, size - done);
          const data = await read(n);
          if (data.length !== n) throw new StargzError("TAR_TRUNCATED", `tar ends inside the data of ${entry.name}`, { entry: entry.name });
          hash.update(data);
          this.diffHash.update(data);
          this.uncompressedSize += n;
          onData(data);
          done += n;
          if (!gz.write(data)) await once(gz, "drain");
        }
        gz.end();
      } catch (err) {
        gz.destroy(err as Error);
        throw err;
      }
    };
    const consume = async () => {
      try {
        for await (const out of gz as AsyncIterable<Buffer>) await this.write(out);
      } catch (err) {
        gz.destroy(err as Error);
        throw err;
      }
    };
    await Promise.all([produce(), consume()]);
    return `sha256:${hash.digest("hex")}`;
  }

  digests(): { diffId: string; blobDigest: string } {
    return { diffId: `sha256:${this.diffHash.digest("hex")}`, blobDigest: `sha256:${this.blobHash.digest("hex")}` };
  }
}

type ReadBody = (n: number) => Promise<Buffer>;

/** Lays out entries the eStargz way: each chunk of file data opens a new gzip member. */
class EstargzBuilder {
  readonly entries: TocEntry[] = [];
  private readonly pipe: MemberPipeline;
  /** every non-directory name so far: a second one would make a TOC that readers must refuse */
  private readonly names = new Set<string>();

  constructor(
    private readonly output: Writable,
    private readonly chunkSize: number,
    level: number,
    concurrency: number,
  ) {
    const member = Math.min(chunkSize, STREAM_MEMBER_BYTES);
    this.pipe = new MemberPipeline(output, level, Math.max(2, concurrency * 2), Math.max(32 << 20, member * concurrency * 3));
  }

  async add(h: TarHeader, read: ReadBody): Promise<void> {
    const path = normalizeName(h.name);
    if (path === undefined) {
      throw new StargzError("CONVERT_BAD_INPUT", `tar entry name ${JSON.stringify(h.name)} escapes the layer root`, { entry: h.name });
    }
    // converting a sparse file would store its sparse map and fragments as the file's contents
    if (isPaxSparse(h)) {
      throw new StargzError("TAR_UNSUPPORTED_ENTRY", `tar entry ${JSON.stringify(h.name)} is a PAX sparse file (GNU.sparse.*), which eStargz cannot hold; re-create the layer without --sparse`, { entry: h.name });
    }
    if (h.type !== "dir") {
      if (this.names.has(path)) throw new StargzError("CONVERT_BAD_INPUT", `tar has ${JSON.stringify(h.name)} twice`, { entry: h.name });
      this.names.add(path);
    }
    this.pipe.append(encodeHeader(h));
    const ent: TocEntry = { name: path === "" ? "./" : path, type: h.type };
    if (h.type === "reg" && h.size > 0) ent.size = h.size;
    const modtime = formatModtime(h.mtime);
    if (modtime) ent.modtime = modtime;
    if (h.type === "symlink") ent.linkName = h.linkName;
    if (h.type === "hardlink") {
      const target = normalizeName(h.linkName);
      if (!target) throw new StargzError("CONVERT_BAD_INPUT", `hardlink ${h.name} has an invalid target ${JSON.stringify(h.linkName)}`, { entry: h.name });
      ent.linkName = target;
    }
    ent.mode = h.mode;
    ent.uid = h.uid;
    ent.gid = h.gid;
    if (h.uname) ent.userName = h.uname;
    if (h.gname) ent.groupName = h.gname;
    if (h.type === "char" || h.type === "block") {
      ent.devMajor = h.devMajor;
      ent.devMinor = h.devMinor;
    }
    const xattrNames = Object.keys(h.xattrs).sort();
    if (xattrNames.length) ent.xattrs = Object.fromEntries(xattrNames.map((k) => [k, h.xattrs[k]!.toString("base64")]));
    this.entries.push(ent);
    if (h.type !== "reg") return;

    // single-chunk files (most of them) reuse the chunk digest instead of hashing twice
    const fileHash: Hash | undefined = h.size > this.chunkSize ? createHash("sha256") : undefined;
    let written = 0;
    while (written < h.size) {
      const n = Math.min(this.chunkSize, h.size - written);
      await this.pipe.closeMember();
      const chunk: TocEntry = written === 0 ? ent : { name: ent.name, type: "chunk" };
      if (written > 0) {
        chunk.chunkOffset = written;
        this.entries.push(chunk);
      }
      chunk.chunkSize = n;
      if (n > STREAM_MEMBER_BYTES) {
        chunk.chunkDigest = await this.pipe.streamMember(chunk, n, read, (b) => fileHash?.update(b));
        written += n;
        continue;
      }
      const data = await read(n);
      if (data.length !== n) throw new StargzError("TAR_TRUNCATED", `tar ends inside the data of ${h.name}`, { entry: h.name });
      chunk.chunkDigest = sha256(data);
      fileHash?.update(data);
      this.pipe.startsHere(chunk);
      this.pipe.append(data);
      written += n;
    }
    ent.digest = fileHash ? `sha256:${fileHash.digest("hex")}` : (ent.chunkDigest ?? EMPTY_DIGEST);
    this.pipe.append(Buffer.alloc(padding(h.size)));
  }

  async addLandmark(name: string): Promise<void> {
    const h = emptyHeader(name, "reg");
    h.size = 1;
    await this.add(h, async () => Buffer.from([LANDMARK_CONTENTS]));
  }

  async finish(): Promise<ConvertResultDetail> {
    await this.pipe.drain(); // every offset is known from here on
    const tocJson = serializeToc({ version: 1, entries: this.entries });
    const tocHeader = emptyHeader(TOC_TAR_NAME, "reg");
    tocHeader.size = tocJson.length;
    const tocOffset = this.pipe.written;
    this.pipe.append(Buffer.concat([encodeHeader(tocHeader), tocJson, Buffer.alloc(padding(tocJson.length)), END_OF_ARCHIVE]));
    await this.pipe.drain();
    const tocLength = this.pipe.written - tocOffset;
    const footer = estargzFooter(tocOffset);
    await this.pipe.write(footer);
    const { diffId, blobDigest } = this.pipe.digests();
    this.output.end();
    if (!this.output.writableFinished) await once(this.output, "finish");
    return {
      tocDigest: sha256(tocJson),
      diffId,
      uncompressedSize: this.pipe.uncompressedSize,
      blobDigest,
      blobSize: this.pipe.written,
      tocOffset,
      tocLength,
      footerSize: footer.length,
      missingPrioritized: [],
    };
  }
}

function isReserved(name: string): boolean {
  const p = normalizeName(name);
  return p === TOC_TAR_NAME || p === PREFETCH_LANDMARK || p === NO_PREFETCH_LANDMARK;
}

async function* counting(src: AsyncIterable<Buffer>, onProgress?: (n: number) => void): AsyncGenerator<Buffer> {
  let n = 0;
  for await (const b of src) {
    n += b.length;
    onProgress?.(n);
    yield b;
  }
}

/**
 * Order for prioritised files: each one preceded by its parent directories and, for a hardlink, by
 * its target, all in their first appearance; then everything else in input order.
 */
function prioritisedOrder<T extends { header: TarHeader }>(entries: T[], prioritized: string[]): { order: T[]; front: number; missing: string[] } {
  const index = new Map<string, number>();
  entries.forEach((e, i) => {
    const p = normalizeName(e.header.name);
    if (p !== undefined && !index.has(p)) index.set(p, i);
  });
  const moved = new Set<number>();
  const order: T[] = [];
  const missing: string[] = [];
  const move = (path: string, depth: number): boolean => {
    const i = index.get(path);
    if (i === undefined) return false;
    if (moved.has(i) || depth > 64) return true;
    const parts = path.split("/");
    for (let k = 0; k < parts.length; k++) {
      const parent = parts.slice(0, k).join("/");
      const pi = index.get(parent);
      if (pi !== undefined && !moved.has(pi)) {
        moved.add(pi);
        order.push(entries[pi]!);
      }
    }
    const h = entries[i]!.header;
    if (h.type === "hardlink") {
      const t = normalizeName(h.linkName);
      if (t !== undefined) move(t, depth + 1);
    }
    if (!moved.has(i)) {
      moved.add(i);
      order.push(entries[i]!);
    }
    return true;
  };
  for (const p of prioritized) {
    const path = normalizeName(p);
    if (path === undefined || path === "" || !move(path, 0)) missing.push(p);
  }
  const front = order.length;
  entries.forEach((e, i) => {
    if (!moved.has(i)) order.push(e);
  });
  return { order, front, missing };
}

/**
 * Convert a tar, tar.gz or tar.zst stream into an eStargz blob written to `output` (which is ended).
 * Without prioritised files the input is streamed straight through; with them it is spooled
 * (uncompressed) to a temp file so entries can be reordered. Memory stays bounded either way.
 */
export async function convertToEstargz(input: Readable | AsyncIterable<Buffer>, output: Writable, opts: ConvertOptions = {}): Promise<ConvertResultDetail> {
  const chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const level = opts.level ?? 9;
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 1) {
    throw new StargzError("CONVERT_BAD_OPTION", `chunkSize must be a positive integer, got ${chunkSize}`, { chunkSize });
  }
  if (!Number.isInteger(level) || level < 0 || level > 9) throw new StargzError("CONVERT_BAD_OPTION", `level must be 0…9, got ${level}`, { level });
  const concurrency = Math.max(1, opts.concurrency ?? availableParallelism());
  const builder = new EstargzBuilder(output, chunkSize, level, concurrency);
  const tar = counting(decompressedTar(input), opts.onProgress);
  const prioritized = opts.prioritizedFiles ?? [];

  if (prioritized.length === 0) {
    await builder.addLandmark(NO_PREFETCH_LANDMARK);
    for await (const e of readTar(new StreamByteSource(tar[Symbol.asyncIterator]()))) {
      if (!isReserved(e.header.name)) await builder.add(e.header, (n) => e.read(n));
    }
    return builder.finish();
  }

  const dir = await mkdtemp(join(opts.tmpDir ?? tmpdir(), "lazypull-esgz-"));
  try {
    const spool = join(dir, "input.tar");
    await pipeline(Readable.from(tar), createWriteStream(spool));
    const fh = await open(spool, "r");
    try {
      const entries: Array<{ header: TarHeader; dataOffset: number }> = [];
      for await (const e of readTar(new FileByteSource(fh))) {
        if (!isReserved(e.header.name)) entries.push({ header: e.header, dataOffset: e.dataOffset });
      }
      const { order, front, missing } = prioritisedOrder(entries, prioritized);
      const bodyOf = (e: { header: TarHeader; dataOffset: number }): ReadBody => {
        const src = new FileByteSource(fh, e.dataOffset);
        return (n) => src.read(n);
      };
      for (let i = 0; i < order.length; i++) {
        if (i === front) await builder.addLandmark(front > 0 ? PREFETCH_LANDMARK : NO_PREFETCH_LANDMARK);
        await builder.add(order[i]!.header, bodyOf(order[i]!));
      }
      if (front === order.length) await builder.addLandmark(front > 0 ? PREFETCH_LANDMARK : NO_PREFETCH_LANDMARK);
      const result = await builder.finish();
      result.missingPrioritized = missing;
      return result;
    } finally {
      await fh.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
