import { webcrypto } from "node:crypto";
import { inflatePrefix, type ChunkRef } from "@lazypull/stargz-format";
import { FuseFsError } from "../errors.js";

/**
 * Inflates a chunk's member and checks its `chunkDigest`, with both steps off the main thread: zlib
 * runs on the libuv pool (stargz-format's `inflatePrefix`) and so does WebCrypto's digest. (A sync
 * sha256 of a 4 MiB chunk holds the event loop for ~10–20 ms here, stalling every FUSE op meanwhile.)
 */
export async function inflateVerified(c: ChunkRef, compressed: Buffer, digest: string): Promise<Buffer> {
  const context = { digest, path: c.path, fileOffset: c.fileOffset, compressedOffset: c.compressedOffset };
  const need = c.innerOffset + c.size;
  const out = await inflatePrefix(compressed, need, context);
  if (out.length < need) {
    throw new FuseFsError("FUSEFS_BAD_CHUNK", `${c.path}@${c.fileOffset} in ${digest} inflates to ${out.length - c.innerOffset} bytes, TOC says ${c.size}`, context);
  }
  const data = out.subarray(c.innerOffset, need);
  if (c.chunkDigest !== undefined) {
    const got = `sha256:${Buffer.from(await webcrypto.subtle.digest("SHA-256", data)).toString("hex")}`;
    if (got !== c.chunkDigest) {
      throw new FuseFsError("FUSEFS_BAD_CHUNK", `${c.path}@${c.fileOffset} in ${digest} has digest ${got}, TOC says ${c.chunkDigest}`, {
        ...context,
        expected: c.chunkDigest,
        actual: got,
      });
    }
  }
  return data;
}
