// Digest checks: hashing bytes, or a stream on its way through (which errors instead of ending on a mismatch).
import { createHash, type Hash } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import type { ByteCounter } from "./body.js";
import { RegistryError, type RegistryErrorContext } from "./errors.js";

/** A hash for a digest's algorithm (sha256 or sha512). */
export function hasherFor(digest: string, ctx: RegistryErrorContext): Hash {
  const alg = digest.slice(0, digest.indexOf(":"));
  if (alg !== "sha256" && alg !== "sha512") {
    throw new RegistryError("DIGEST_INVALID", `unsupported digest algorithm in "${digest}"`, { ...ctx, digest });
  }
  return createHash(alg);
}

export function digestOf(bytes: Buffer, algorithm: "sha256" | "sha512" = "sha256"): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest("hex")}`;
}

/** Throws DIGEST_MISMATCH unless `bytes` hash to `digest`. */
export function verifyBytes(bytes: Buffer, digest: string, ctx: RegistryErrorContext): void {
  const actual = `${digest.slice(0, digest.indexOf(":"))}:${hasherFor(digest, ctx).update(bytes).digest("hex")}`;
  if (actual !== digest) {
    throw new RegistryError("DIGEST_MISMATCH", `content of ${digest} hashes to ${actual}`, { ...ctx, digest, actual });
  }
}

/**
 * A pass-through that hashes what flows through it and fails at the end (before signalling success)
 * when the content does not match `digest` or `size`.
 */
export function verifyingStream(digest: string, size: number | undefined, counter: ByteCounter, ctx: RegistryErrorContext): Transform {
  const hash = hasherFor(digest, ctx);
  let n = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      hash.update(chunk);
      n += chunk.length;
      counter.bytesReceived += chunk.length;
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      const actual = `${digest.slice(0, digest.indexOf(":"))}:${hash.digest("hex")}`;
      if (size !== undefined && n !== size) {
        cb(new RegistryError("DIGEST_MISMATCH", `blob ${digest} has ${n} bytes, expected ${size}`, { ...ctx, digest, actual }));
      } else if (actual !== digest) {
        cb(new RegistryError("DIGEST_MISMATCH", `blob ${digest} hashes to ${actual}`, { ...ctx, digest, actual }));
      } else cb();
    },
  });
}
