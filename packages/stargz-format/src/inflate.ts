import { constants, createGunzip, gunzip } from "node:zlib";
import { StargzError } from "./errors.js";

/**
 * Inflate the first `need` bytes of a gzip member without blocking the event loop (zlib runs on the
 * libuv pool). Stops as soon as it has them: bytes after the wanted range (tar padding, the next
 * headers, a following member) are never inflated in full.
 *
 * With `cut`, `compressed` is only the first bytes of a member (cut short on purpose): what they hold
 * is inflated, up to `need`, and the missing rest is no error. Nothing about it is checked.
 */
export function inflatePrefix(compressed: Buffer, need: number, context: Record<string, unknown>, o: { cut?: boolean } = {}): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let total = 0;
    let settled = false;
    const gz = createGunzip({ chunkSize: Math.max(16 * 1024, Math.min(need, 1 << 20)), ...(o.cut ? { finishFlush: constants.Z_SYNC_FLUSH } : {}) });
    const finish = (): void => {
      if (settled) return;
      settled = true;
      gz.removeAllListeners("data");
      gz.destroy();
      resolve(Buffer.concat(parts, total));
    };
    gz.on("data", (b: Buffer) => {
      parts.push(b);
      total += b.length;
      if (total >= need) finish();
    });
    gz.on("end", finish);
    gz.on("error", (err) => {
      if (settled) return;
      if (total >= need || (o.cut && total > 0)) return finish();
      settled = true;
      reject(new StargzError("ESTARGZ_CHUNK_CORRUPT", `cannot inflate member: ${err.message}`, context, { cause: err }));
    });
    gz.end(compressed);
  });
}

/**
 * Inflate a whole (bounded) gzip member; exceeding `maxBytes` is `tooLarge()`. The member's trailer
 * says its inflated size (ISIZE, mod 2^32): zlib gets an output buffer that size, so a multi-MB TOC is
 * inflated into one buffer instead of 16 KiB chunks concatenated at the end (half the peak). ISIZE is
 * only a hint: zlib checks it against the output anyway, so a wrong one fails as corrupt (after at most
 * `maxBytes` of mostly untouched address space), never gives a wrong result.
 */
export function inflateBounded(compressed: Buffer, maxBytes: number, tooLarge: () => Error, corrupt: (e: Error) => Error): Promise<Buffer> {
  const hinted = compressed.length >= 18 ? compressed.readUInt32LE(compressed.length - 4) + 1 : 0;
  const chunkSize = Math.min(Math.max(16 * 1024, hinted), maxBytes + 1);
  return new Promise((resolve, reject) => {
    gunzip(compressed, { maxOutputLength: maxBytes, chunkSize }, (err, out) => {
      if (!err) return resolve(out);
      if ((err as { code?: string }).code === "ERR_BUFFER_TOO_LARGE" || err instanceof RangeError) return reject(tooLarge());
      reject(corrupt(err));
    });
  });
}
