import { open, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { LRUCache } from "lru-cache";
import { BlobCacheError } from "../errors.js";
import { blockCount, blockSpan, decodeHeader, HEADER_PROBE, verifyBlocks, type EntryHeader } from "./format.js";
import { HandlePool } from "./handle-pool.js";

/**
 * Reading entry files, checked: the only code that turns an entry file's bytes into payload. Whole
 * reads, sub-range reads and header-only reads (for listing) all take the header through `readHeader`,
 * so a file is judged the same way whichever way it is read. Corruption is thrown
 * (`BLOBCACHE_CORRUPT_ENTRY`) for the cache to drop the entry; a missing file is `undefined`.
 */

/** What a read gave: the bytes asked for, and the size of the entry file they came from (for the index). */
export interface EntryRead {
  bytes: Buffer;
  fileBytes: number;
}

const corrupt = (path: string, why: string) => new BlobCacheError("BLOBCACHE_CORRUPT_ENTRY", `corrupt cache entry ${path}: ${why}`, { path });

async function pread(fh: FileHandle, length: number, position: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  return buf.subarray(0, (await fh.read(buf, 0, length, position)).bytesRead);
}

/**
 * The header of an open entry file. Reads the first `probe` bytes (a header and, often, payload after
 * it: `head` gives them back so the caller need not read them again), and once more when the header is
 * longer than that. With `key`, a file holding another key is corrupt (a hash collision or a misplaced file).
 */
export async function readHeader(
  fh: FileHandle,
  path: string,
  key?: string,
  probe = HEADER_PROBE,
): Promise<{ header: EntryHeader; head: Buffer }> {
  let head = await pread(fh, probe, 0);
  let d = decodeHeader(head, path);
  if ("need" in d) {
    head = await pread(fh, d.need, 0);
    d = decodeHeader(head, path);
    if ("need" in d) throw corrupt(path, "file ends inside its header");
  }
  if (key !== undefined && d.key !== key) throw corrupt(path, "holds another key");
  return { header: d, head };
}

/** The header of the entry file at `path`, its key unchecked (listing finds keys this way). */
export async function loadHeader(path: string): Promise<EntryHeader> {
  const fh = await open(path, "r");
  try {
    return (await readHeader(fh, path)).header;
  } finally {
    await fh.close();
  }
}

/**
 * Reads entries of `data/` through a small pool of open handles and a cache of parsed headers, so that
 * a hit costs one `pread`.
 */
export class EntryReader {
  private readonly headers = new LRUCache<string, EntryHeader>({ max: 4096 });
  private readonly handles = new HandlePool(32);

  constructor(private readonly dataDir: string) {}

  /**
   * The whole payload of entry `rel` holding key `k`, every block checked. `knownSize` (the index's
   * size of the file, asked once the file is open) saves an `fstat`.
   */
  async whole(rel: string, k: string, knownSize: () => number | undefined): Promise<EntryRead | undefined> {
    const path = join(this.dataDir, rel);
    const slot = await this.handles.acquire(rel, path);
    if (!slot) return undefined;
    try {
      const size = knownSize() ?? (await slot.fh.stat()).size;
      const { header: h, head: file } = await readHeader(slot.fh, path, k, size);
      if (file.length !== h.headerLen + h.payloadLen) {
        throw corrupt(path, `file is ${file.length} bytes, header says ${h.headerLen + h.payloadLen}`);
      }
      const payload = file.subarray(h.headerLen);
      verifyBlocks(h, 0, blockCount(h.payloadLen, h.blockSize), payload, path);
      return { bytes: payload, fileBytes: file.length };
    } finally {
      this.handles.release(slot);
    }
  }

  /**
   * Payload bytes [offset, offset+length) of entry `rel` holding key `k`, clamped at its end like
   * `pread`; only the blocks holding the range are read and checked.
   */
  async range(rel: string, k: string, offset: number, length: number): Promise<EntryRead | undefined> {
    const path = join(this.dataDir, rel);
    const slot = await this.handles.acquire(rel, path);
    if (!slot) return undefined;
    try {
      let h = this.headers.get(rel);
      let head: Buffer | undefined;
      if (!h) {
        ({ header: h, head } = await readHeader(slot.fh, path, k));
        this.headers.set(rel, h);
      }
      const fileBytes = h.headerLen + h.payloadLen;
      const end = Math.min(offset + length, h.payloadLen);
      if (offset >= end) return { bytes: Buffer.alloc(0), fileBytes };
      const first = Math.floor(offset / h.blockSize);
      const last = Math.ceil(end / h.blockSize);
      const span = blockSpan(h, first, last);
      const at = h.headerLen + span.start;
      // the header probe often holds the blocks of a small entry already
      const bytes = head && at + span.length <= head.length ? head.subarray(at, at + span.length) : await pread(slot.fh, span.length, at);
      verifyBlocks(h, first, last, bytes, path);
      return { bytes: Buffer.from(bytes.subarray(offset - span.start, end - span.start)), fileBytes };
    } finally {
      this.handles.release(slot);
    }
  }

  /** Stop reusing what is known of `rel` (dropped, evicted, or rewritten by this process). */
  drop(rel: string): void {
    this.headers.delete(rel);
    this.handles.drop(rel);
  }

  clear(): void {
    this.headers.clear();
    this.handles.clear();
  }
}
