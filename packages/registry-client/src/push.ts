// Writing to a registry. A blob goes up in one of three ways once a HEAD (asking for the push scope, so one
// token serves the whole upload) shows it missing: mounted from another repository, one monolithic PUT, or
// PATCH chunks closed by a PUT (hashed on the way: the chunks are never resent). Then the manifest PUT.
import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import { headBlob } from "./blobs.js";
import { drain } from "./body.js";
import { checkDigest, ctxOf, pushScope } from "./calls.js";
import { RegistryError } from "./errors.js";
import type { Reference } from "./reference.js";
import { errorFor, header, type Transport } from "./transport.js";
import type { PushBlobResult } from "./types.js";


/** A blob body: bytes, a factory of fresh streams (retryable), or a stream (sent once). */
export type BlobBody = Buffer | Uint8Array | (() => Readable) | Readable;

export interface UploadOptions {
  /** the repository (on the same registry) to mount the blob from */
  from?: string;
  /** blobs up to this size are uploaded in one PUT, larger ones in PATCH chunks (default 32 MiB) */
  monolithicUploadLimit?: number;
  /** PATCH chunk size (default 16 MiB) */
  uploadChunkSize?: number;
  signal?: AbortSignal;
}

export async function pushBlob(t: Transport, ref: Reference, digest: string, size: number, body: BlobBody, opts: UploadOptions): Promise<PushBlobResult> {
  checkDigest(digest, ref);
  const ctx = ctxOf(ref, digest);
  const from = opts.from;
  const scopes = pushScope(ref, from);
  // the existence check asks for the push scope too, so one token serves the whole upload
  const exists = await headBlob(t, ref, digest, scopes, opts.signal).then(
    () => true,
    (err: RegistryError) => {
      if (err.code === "REGISTRY_NOT_FOUND") return false;
      throw err;
    },
  );
  if (exists) return { digest, size, outcome: "exists" };
  const q = from ? `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}` : "";
  const start = await t.request(
    { method: "POST", registry: ref.registry, repository: ref.repository, digest, path: `/v2/${ref.repository}/blobs/uploads/${q}`, headers: { "content-length": "0" }, scopes, signal: opts.signal },
    async (res) => {
      if (res.status === 201) {
        await drain(res.body, res.counter);
        return { mounted: true as const };
      }
      if (res.status !== 202) throw await errorFor(res, res.counter, ctx, `starting upload of ${digest} to ${ref.name}`);
      await drain(res.body, res.counter);
      const loc = header(res.headers, "location");
      if (!loc) throw new RegistryError("REGISTRY_BAD_RESPONSE", `upload of ${digest} to ${ref.name}: no Location`, ctx);
      return { mounted: false as const, location: new URL(loc, res.url).toString() };
    },
  );
  if (start.mounted) return { digest, size, outcome: "mounted" };
  let location = start.location;
  const limit = opts.monolithicUploadLimit ?? 32 << 20;
  if (size > limit) {
    location = await uploadChunks(t, ref, digest, size, body, location, scopes, opts.uploadChunkSize ?? 16 << 20, opts.signal);
    await finishUpload(t, ref, digest, size, location, Buffer.alloc(0), scopes, opts.signal);
  } else {
    await finishUpload(t, ref, digest, size, location, body, scopes, opts.signal);
  }
  return { digest, size, outcome: "uploaded" };
}

/** The closing PUT `?digest=`: the whole body (monolithic) or nothing after the chunks. */
async function finishUpload(t: Transport, ref: Reference, digest: string, size: number, location: string, body: BlobBody, scopes: string[], signal?: AbortSignal): Promise<void> {
  const ctx = ctxOf(ref, digest);
  const url = new URL(location);
  url.searchParams.set("digest", digest);
  const bytes = Buffer.isBuffer(body) || body instanceof Uint8Array ? body : undefined;
  const contentLength = bytes ? bytes.byteLength : size;
  await t.request(
    {
      method: "PUT",
      registry: ref.registry,
      repository: ref.repository,
      digest,
      path: url.toString(),
      headers: { "content-type": "application/octet-stream", "content-length": String(contentLength) },
      body: body,
      scopes,
      signal,
    },
    async (res) => {
      if (res.status === 400) {
        const err = await errorFor(res, res.counter, ctx, `upload of ${digest} to ${ref.name}`);
        if (err.context.registryErrors?.includes("DIGEST_INVALID") || err.context.registryErrors?.includes("SIZE_INVALID")) {
          throw new RegistryError("DIGEST_MISMATCH", `registry ${ref.registry} found the uploaded bytes do not match ${digest}`, err.context);
        }
        throw err;
      }
      if (res.status !== 201) throw await errorFor(res, res.counter, ctx, `upload of ${digest} to ${ref.name}`);
      await drain(res.body, res.counter);
      const claimed = header(res.headers, "docker-content-digest");
      if (claimed && claimed !== digest) throw new RegistryError("DIGEST_MISMATCH", `registry stored ${claimed} for upload of ${digest}`, { ...ctx, actual: claimed });
    },
  );
}

/** PATCH chunks of `chunkSize` from the body, hashed on the way; the upload's next location. */
async function uploadChunks(
  t: Transport,
  ref: Reference,
  digest: string,
  size: number,
  body: BlobBody,
  location: string,
  scopes: string[],
  chunkSize: number,
  signal?: AbortSignal,
): Promise<string> {
  const ctx = ctxOf(ref, digest);
  const hash = createHash(digest.startsWith("sha512:") ? "sha512" : "sha256");
  const source: AsyncIterable<Buffer> | Iterable<Buffer> =
    Buffer.isBuffer(body) || body instanceof Uint8Array ? [Buffer.from(body.buffer, body.byteOffset, body.byteLength)] : typeof body === "function" ? body() : body;
  let offset = 0;
  let pending: Buffer[] = [];
  let pendingLen = 0;
  const send = async (chunk: Buffer) => {
    hash.update(chunk);
    const end = offset + chunk.length - 1;
    location = await t.request(
      {
        method: "PATCH",
        registry: ref.registry,
        repository: ref.repository,
        digest,
        path: location,
        headers: { "content-type": "application/octet-stream", "content-range": `${offset}-${end}`, "content-length": String(chunk.length) },
        body: chunk,
        scopes,
        signal,
        retry: false,
      },
      async (res) => {
        if (res.status !== 202) throw await errorFor(res, res.counter, ctx, `chunk ${offset}-${end} of ${digest} to ${ref.name}`);
        await drain(res.body, res.counter);
        const loc = header(res.headers, "location");
        return loc ? new URL(loc, res.url).toString() : location;
      },
    );
    offset = end + 1;
  };
  for await (const piece of source) {
    let p = piece;
    while (p.length > 0) {
      const take = Math.min(p.length, chunkSize - pendingLen);
      pending.push(p.subarray(0, take));
      pendingLen += take;
      p = p.subarray(take);
      if (pendingLen === chunkSize) {
        await send(Buffer.concat(pending, pendingLen));
        pending = [];
        pendingLen = 0;
      }
    }
  }
  if (pendingLen > 0) await send(Buffer.concat(pending, pendingLen));
  const actual = `${digest.slice(0, digest.indexOf(":"))}:${hash.digest("hex")}`;
  if (offset !== size || actual !== digest) {
    throw new RegistryError("DIGEST_MISMATCH", `blob body for ${digest} (${size} bytes) was ${offset} bytes hashing to ${actual}`, { ...ctx, actual });
  }
  return location;
}

/** PUTs a manifest or index under the reference's tag (or digest); its sha256 digest. */
export async function pushManifest(t: Transport, ref: Reference, bytes: Buffer, mediaType: string, signal?: AbortSignal): Promise<string> {
  const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
  const ctx = ctxOf(ref, digest);
  if (ref.digest && ref.digest !== digest && !ref.tag) {
    throw new RegistryError("DIGEST_MISMATCH", `manifest bytes hash to ${digest}, not ${ref.digest}`, { ...ctx, actual: digest, digest: ref.digest });
  }
  const target = ref.tag ?? digest;
  return t.request(
    {
      method: "PUT",
      registry: ref.registry,
      repository: ref.repository,
      digest,
      path: `/v2/${ref.repository}/manifests/${target}`,
      headers: { "content-type": mediaType, "content-length": String(bytes.length) },
      body: bytes,
      scopes: pushScope(ref),
      signal,
    },
    async (res) => {
      if (res.status !== 201 && res.status !== 200) throw await errorFor(res, res.counter, ctx, `pushing manifest ${ref}`);
      await drain(res.body, res.counter);
      const claimed = header(res.headers, "docker-content-digest");
      if (claimed && claimed !== digest) throw new RegistryError("DIGEST_MISMATCH", `registry stored manifest ${ref} as ${claimed}, expected ${digest}`, { ...ctx, actual: claimed });
      return digest;
    },
  );
}
