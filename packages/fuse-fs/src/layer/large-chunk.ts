import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import type { ChunkRef } from "@lazypull/stargz-format";
import { FuseFsError } from "../errors.js";

/**
 * A chunk whose inflated size or compressed span exceeds this is never held in memory whole: it is
 * fetched, inflated and hashed as a stream into the cache in `LARGE_SEGMENT_BYTES` pieces, and served from
 * there once its digest matched. eStargz writers use 4 MiB chunks by default; this is for the others.
 */
export const LARGE_CHUNK_BYTES = 16 * 1024 * 1024;
/** inflated bytes per cache entry of a large chunk */
export const LARGE_SEGMENT_BYTES = 4 * 1024 * 1024;
/** compressed bytes per range request of a large chunk */
export const LARGE_PIECE_BYTES = 4 * 1024 * 1024;
/** what one large chunk in flight holds: a compressed piece, a segment, zlib's window and output */
export const LARGE_CHUNK_MEMORY = LARGE_PIECE_BYTES + LARGE_SEGMENT_BYTES + 2 * 1024 * 1024;

export function isLargeChunk(c: ChunkRef): boolean {
  return c.size > LARGE_CHUNK_BYTES || c.compressedEnd - c.compressedOffset > LARGE_CHUNK_BYTES;
}

/** The segments bytes [start, start+length) of a chunk lie in: each segment's index and the [from, to) wanted of it. */
export function segmentsOf(c: ChunkRef, start = 0, length = c.size): { index: number; from: number; to: number }[] {
  const out: { index: number; from: number; to: number }[] = [];
  const end = Math.min(c.size, start + length);
  for (let s = Math.floor(start / LARGE_SEGMENT_BYTES) * LARGE_SEGMENT_BYTES; s < end; s += LARGE_SEGMENT_BYTES) {
    out.push({ index: s / LARGE_SEGMENT_BYTES, from: Math.max(start, s) - s, to: Math.min(end, s + LARGE_SEGMENT_BYTES) - s });
  }
  return out;
}

export interface StreamChunkOptions {
  chunk: ChunkRef;
  /** blob digest, for errors */
  digest: string;
  /** compressed bytes [offset, offset+length) of the blob (retried by the caller) */
  fetchPiece(offset: number, length: number): Promise<Buffer>;
  /** stores one inflated segment (awaited: it is the back pressure) */
  putSegment(index: number, data: Buffer): Promise<void>;
}

/**
 * Inflates one gzip member piece by piece into segments and checks the chunk's digest over all of them.
 * Fetching stops once the chunk's bytes are out (the rest of the member is tar padding and headers);
 * a member that ends early, does not inflate, or hashes wrong is `FUSEFS_BAD_CHUNK`, and the caller
 * must not mark the segments as usable.
 */
export async function streamChunk(o: StreamChunkOptions): Promise<void> {
  const c = o.chunk;
  const context = { digest: o.digest, path: c.path, fileOffset: c.fileOffset, compressedOffset: c.compressedOffset, size: c.size };
  let next = c.compressedOffset;
  const pieces = Readable.from(
    (async function* () {
      while (next < c.compressedEnd) {
        const length = Math.min(LARGE_PIECE_BYTES, c.compressedEnd - next);
        const piece = await o.fetchPiece(next, length);
        next += length;
        yield piece;
      }
    })(),
    { objectMode: false, highWaterMark: 1 },
  );
  const gz = createGunzip({ chunkSize: 1024 * 1024 });
  let fetchError: unknown;
  pieces.on("error", (err) => {
    fetchError = err;
    gz.destroy(err);
  });
  pieces.pipe(gz);

  const hash = createHash("sha256");
  let skip = c.innerOffset;
  let taken = 0;
  let segment: Buffer[] = [];
  let segmentBytes = 0;
  let index = 0;
  const flush = async () => {
    const data = segment.length === 1 ? segment[0]! : Buffer.concat(segment, segmentBytes);
    segment = [];
    segmentBytes = 0;
    await o.putSegment(index++, data);
  };
  try {
    for await (const outIn of gz as AsyncIterable<Buffer>) {
      let out = outIn;
      if (skip > 0) {
        const n = Math.min(skip, out.length);
        skip -= n;
        out = out.subarray(n);
      }
      out = out.subarray(0, c.size - taken);
      while (out.length > 0) {
        const n = Math.min(out.length, LARGE_SEGMENT_BYTES - segmentBytes);
        const part = out.subarray(0, n);
        hash.update(part);
        segment.push(Buffer.from(part));
        segmentBytes += n;
        taken += n;
        out = out.subarray(n);
        if (segmentBytes === LARGE_SEGMENT_BYTES) await flush();
      }
      if (taken === c.size) break;
    }
  } catch (err) {
    if (fetchError) throw fetchError as Error;
    throw new FuseFsError("FUSEFS_BAD_CHUNK", `${c.path}@${c.fileOffset} in ${o.digest} does not inflate: ${(err as Error).message}`, context, { cause: err });
  } finally {
    pieces.unpipe(gz);
    pieces.destroy();
    gz.destroy();
  }
  if (taken < c.size) {
    throw new FuseFsError("FUSEFS_BAD_CHUNK", `${c.path}@${c.fileOffset} in ${o.digest} inflates to ${taken} bytes, TOC says ${c.size}`, context);
  }
  if (segmentBytes > 0) await flush();
  if (c.chunkDigest !== undefined) {
    const got = `sha256:${hash.digest("hex")}`;
    if (got !== c.chunkDigest) {
      throw new FuseFsError("FUSEFS_BAD_CHUNK", `${c.path}@${c.fileOffset} in ${o.digest} has digest ${got}, TOC says ${c.chunkDigest}`, {
        ...context,
        expected: c.chunkDigest,
        actual: got,
      });
    }
  }
}
