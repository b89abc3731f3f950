// What every protocol step asks of a registry in the same way: the token scopes of pulls and pushes, the
// error context that names registry, repository and digest, the digest and range checks made before any
// request, and the GET/HEAD of a blob (shared by blobs.ts, ranges.ts and push.ts's existence check).
import { RegistryError, type RegistryErrorContext } from "./errors.js";
import { isDigest, type Reference } from "./reference.js";
import type { Call } from "./transport.js";
import type { ByteRange } from "./types.js";

export function pullScope(ref: Reference): string[] {
  return [`repository:${ref.repository}:pull`];
}

/** push and pull on the repository, and pull on `from` (the source of a cross-repository mount) */
export function pushScope(ref: Reference, from?: string): string[] {
  const s = [`repository:${ref.repository}:pull,push`];
  if (from && from !== ref.repository) s.push(`repository:${from}:pull`);
  return s;
}

export function ctxOf(ref: Reference, digest?: string): RegistryErrorContext {
  return { registry: ref.registry, repository: ref.repository, digest };
}

export function checkDigest(digest: string, ref: Reference): void {
  if (!isDigest(digest)) throw new RegistryError("DIGEST_INVALID", `"${digest}" is not a digest (want sha256:<64 hex>)`, ctxOf(ref, digest));
}

/** REGISTRY_RANGE_NOT_SATISFIABLE for offsets and lengths that are not non-negative safe integers. */
export function checkRange(r: ByteRange, ctx: RegistryErrorContext): void {
  if (!Number.isSafeInteger(r.offset) || !Number.isSafeInteger(r.length) || r.offset < 0 || r.length < 0) {
    throw new RegistryError("REGISTRY_RANGE_NOT_SATISFIABLE", `bad range ${r.offset}+${r.length}`, ctx);
  }
}

/** `GET`/`HEAD /v2/<repository>/blobs/<digest>`, uncompressed, with a `Range` when given. */
export function blobCall(ref: Reference, digest: string, method: "GET" | "HEAD", signal?: AbortSignal, range?: string): Call {
  const headers: Record<string, string> = { "accept-encoding": "identity" };
  if (range) headers.range = range;
  return {
    method,
    registry: ref.registry,
    repository: ref.repository,
    digest,
    path: `/v2/${ref.repository}/blobs/${digest}`,
    headers,
    scopes: pullScope(ref),
    signal,
  };
}
