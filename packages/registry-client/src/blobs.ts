// Whole blobs: HEAD (size and type, or REGISTRY_NOT_FOUND), a small blob read into memory and checked
// against its digest (fetched again when the bytes are wrong), and the streamed GET whose stream fails at
// the end when the content does not match. Ranges of a blob are ranges.ts.
import { delay } from "@lazypull/host";
import { createHash } from "node:crypto";
import { pipeline } from "node:stream";
import { drain, readAll } from "./body.js";
import { blobCall, checkDigest, ctxOf } from "./calls.js";
import { RegistryError } from "./errors.js";
import type { Reference } from "./reference.js";
import { errorFor, header, type Transport } from "./transport.js";
import type { BlobInfo } from "./types.js";
import { verifyingStream } from "./verify.js";

/** fetches of a whole blob whose bytes did not match its digest, before DIGEST_MISMATCH is final */
const MISMATCH_ATTEMPTS = 3;

/** HEAD of a blob, with the pull scope or (for push's existence check) the given scopes. */
export async function headBlob(t: Transport, ref: Reference, digest: string, scopes: string[] | undefined, signal?: AbortSignal): Promise<BlobInfo> {
  checkDigest(digest, ref);
  const ctx = ctxOf(ref, digest);
  const call = blobCall(ref, digest, "HEAD", signal);
  if (scopes) call.scopes = scopes;
  return t.request(call, async (res) => {
    await drain(res.body, res.counter);
    if (res.status === 404) throw new RegistryError("REGISTRY_NOT_FOUND", `blob ${digest} not found in ${ref.name}`, { ...ctx, status: 404 });
    if (res.status === 403) throw new RegistryError("REGISTRY_DENIED", `access to blob ${digest} in ${ref.name} denied`, { ...ctx, status: 403 });
    if (res.status !== 200) throw new RegistryError("REGISTRY_BAD_RESPONSE", `HEAD blob ${digest}: HTTP ${res.status}`, { ...ctx, status: res.status });
    const size = Number(header(res.headers, "content-length"));
    if (!Number.isSafeInteger(size) || size < 0) throw new RegistryError("REGISTRY_BAD_RESPONSE", `HEAD blob ${digest}: no Content-Length`, ctx);
    const claimed = header(res.headers, "docker-content-digest");
    if (claimed && claimed !== digest) throw new RegistryError("DIGEST_MISMATCH", `HEAD blob ${digest} answered for ${claimed}`, { ...ctx, actual: claimed });
    const mediaType = header(res.headers, "content-type");
    return mediaType ? { digest, size, mediaType } : { digest, size };
  });
}

/**
 * A whole (small) blob in memory, digest verified; wrong bytes are fetched again (at most 3 attempts, waiting
 * as for failed requests), then DIGEST_MISMATCH. This is its own small loop, not the transport's: the request
 * succeeded, and what is retried is the content.
 */
export async function getBlob(t: Transport, ref: Reference, digest: string, opts: { signal?: AbortSignal; maxBytes?: number }): Promise<Buffer> {
  checkDigest(digest, ref);
  const ctx = ctxOf(ref, digest);
  const retry = t.retry;
  const attempts = Math.max(1, Math.min(MISMATCH_ATTEMPTS, retry.maxAttempts));
  for (let attempt = 1; ; attempt++) {
    try {
      // checked while the response is in hand, so a mirror's wrong bytes fail that mirror and the next
      // source (another mirror, the registry) answers within the same request
      return await t.request(blobCall(ref, digest, "GET", opts.signal), async (res) => {
        if (res.status !== 200) throw await errorFor(res, res.counter, ctx, `blob ${digest} of ${ref.name}`);
        const bytes = await readAll(res.body, res.counter, opts.maxBytes ?? 256 << 20, ctx);
        const actual = `${digest.slice(0, digest.indexOf(":"))}:${createHash(digest.startsWith("sha512:") ? "sha512" : "sha256").update(bytes).digest("hex")}`;
        if (actual !== digest) throw new RegistryError("DIGEST_MISMATCH", `blob ${digest} of ${ref.name} from ${res.url.host} hashes to ${actual}`, { ...ctx, actual });
        return bytes;
      });
    } catch (err) {
      if (!(err instanceof RegistryError) || err.code !== "DIGEST_MISMATCH") throw err;
      if (attempt >= attempts || opts.signal?.aborted) {
        throw new RegistryError("DIGEST_MISMATCH", `${err.message} (${attempt} attempt${attempt === 1 ? "" : "s"})`, { ...err.context, attempts: attempt }, { cause: err });
      }
    }
    t.stats.retries++;
    await delay(Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** (attempt - 1)), opts.signal);
  }
}

/** The whole blob as a stream that errors with DIGEST_MISMATCH before ending if the content is wrong. */
export async function fetchBlob(t: Transport, ref: Reference, digest: string, signal?: AbortSignal): Promise<NodeJS.ReadableStream> {
  checkDigest(digest, ref);
  const ctx = ctxOf(ref, digest);
  return t.request(blobCall(ref, digest, "GET", signal), async (res) => {
    if (res.status !== 200) throw await errorFor(res, res.counter, ctx, `blob ${digest} of ${ref.name}`);
    const len = header(res.headers, "content-length");
    const verifier = verifyingStream(digest, len === undefined ? undefined : Number(len), res.counter, ctx);
    pipeline(res.body, verifier, () => {
      // errors reach the consumer through `verifier`
    });
    return verifier;
  });
}
