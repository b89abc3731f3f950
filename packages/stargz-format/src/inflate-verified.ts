import { createHash, webcrypto } from "node:crypto";
import { gunzipSync } from "node:zlib";
import { StargzError, where } from "./errors.js";
import { inflatePrefix } from "./inflate.js";
import type { ChunkRef } from "./types.js";

/**
 * Members up to this size are inflated and hashed synchronously. Each async inflate holds a zlib
 * stream (~60 KiB of native memory) until the pool gets to it; a 4 MiB range of small files is
 * thousands of them at once, and the heap never gives that memory back (the daemon reached 650 MB
 * after walking 20,000 files). Inflating 64 KiB takes well under a millisecond, which is no stall.
 */
const SYNC_MEMBER_BYTES = 64 * 1024;

/** The whole small member (the chunk, then tar padding and following headers); undefined when it inflates to more than 1 MiB past the chunk. */
function inflateSmall(compressed: Buffer, need: number, context: Record<string, unknown>): Buffer | undefined {
  try {
    return gunzipSync(compressed, { maxOutputLength: need + 1024 * 1024 });
  } catch (err) {
    if ((err as { code?: string }).code === "ERR_BUFFER_TOO_LARGE" || err instanceof RangeError) return undefined;
    throw new StargzError("ESTARGZ_CHUNK_CORRUPT", `cannot inflate member at ${String(context.compressedOffset)}: ${(err as Error).message}`, context, { cause: err });
  }
}

/**
 * Inflates a chunk's member and checks its `chunkDigest`. Large members go off the main thread: zlib
 * on the libuv pool (stargz-format's `inflatePrefix`) and WebCrypto's digest (a sync sha256 of a
 * 4 MiB chunk holds the event loop for ~10–20 ms, stalling every FUSE op meanwhile). Small members
 * are cheaper done in place (see `SYNC_MEMBER_BYTES`).
 */
export async function inflateVerified(c: ChunkRef, compressed: Buffer, label?: string): Promise<Buffer> {
  const context = { label, path: c.path, fileOffset: c.fileOffset, compressedOffset: c.compressedOffset };
  const need = c.innerOffset + c.size;
  const inPlace = compressed.length <= SYNC_MEMBER_BYTES && need <= SYNC_MEMBER_BYTES * 4 ? inflateSmall(compressed, need, context) : undefined;
  const small = inPlace !== undefined;
  // (a small member with a long run of header-only entries after the chunk takes the async path)
  const out = inPlace ?? (await inflatePrefix(compressed, need, context));
  if (out.length < need) {
    throw new StargzError("ESTARGZ_CHUNK_SIZE_MISMATCH", `${where(label)}${c.path}: chunk at ${c.fileOffset} inflates to ${Math.max(0, out.length - c.innerOffset)} bytes, TOC says ${c.size}`, context);
  }
  // a copy, not a view: the member's tar padding and the next header must not stay alive with it
  const data = small ? Buffer.from(out.subarray(c.innerOffset, need)) : out.subarray(c.innerOffset, need);
  if (c.chunkDigest !== undefined) {
    const hash = small ? createHash("sha256").update(data).digest() : Buffer.from(await webcrypto.subtle.digest("SHA-256", data));
    const got = `sha256:${hash.toString("hex")}`;
    if (got !== c.chunkDigest) {
      throw new StargzError("ESTARGZ_CHUNK_DIGEST_MISMATCH", `${where(label)}${c.path}: chunk at ${c.fileOffset} has digest ${got}, TOC says ${c.chunkDigest}`, {
        ...context,
        expected: c.chunkDigest,
        actual: got,
      });
    }
  }
  return data;
}
