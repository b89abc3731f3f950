// Reading a manifest or index: the GET with the media types we accept, the digest check (against the
// reference's digest, else Docker-Content-Digest), the refusal of schema 1, and the shape checks that turn
// the JSON into a ManifestResult. Writing one is push.ts; picking a platform out of an index is resolve.ts.
import { createHash } from "node:crypto";
import { readAll } from "./body.js";
import { ctxOf, pullScope } from "./calls.js";
import { RegistryError } from "./errors.js";
import { MANIFEST_ACCEPT, isIndexMediaType, isManifestMediaType, isSchema1MediaType } from "./media-types.js";
import { isDigest, type Reference } from "./reference.js";
import { errorFor, header, type Transport } from "./transport.js";
import type { Descriptor, ImageIndex, ImageManifest, ManifestResult } from "./types.js";

const MAX_MANIFEST_BYTES = 4 << 20;

function isDescriptor(d: unknown): d is Descriptor {
  const x = d as Descriptor | null;
  return typeof x === "object" && x !== null && typeof x.digest === "string" && isDigest(x.digest) && Number.isSafeInteger(x.size) && x.size >= 0;
}

export async function getManifest(t: Transport, ref: Reference, signal?: AbortSignal): Promise<ManifestResult> {
  const ctx = ctxOf(ref, ref.digest);
  const call = {
    method: "GET" as const,
    registry: ref.registry,
    repository: ref.repository,
    digest: ref.digest,
    path: `/v2/${ref.repository}/manifests/${ref.reference}`,
    headers: { accept: MANIFEST_ACCEPT.join(", ") },
    scopes: pullScope(ref),
    signal,
  };
  return t.request(call, async (res) => {
    if (res.status !== 200) throw await errorFor(res, res.counter, ctx, `manifest ${ref}`);
    const bytes = await readAll(res.body, res.counter, MAX_MANIFEST_BYTES, ctx);
    const algorithm = (ref.digest ?? header(res.headers, "docker-content-digest") ?? "sha256:").startsWith("sha512:") ? "sha512" : "sha256";
    const digest = `${algorithm}:${createHash(algorithm).update(bytes).digest("hex")}`;
    const claimed = ref.digest ?? header(res.headers, "docker-content-digest");
    if (claimed && claimed !== digest) {
      throw new RegistryError("DIGEST_MISMATCH", `manifest ${ref} hashes to ${digest}, expected ${claimed}`, { ...ctx, digest: claimed, actual: digest });
    }
    return parseManifest(ref, digest, bytes, header(res.headers, "content-type"));
  });
}

/**
 * The checks that turn verified manifest bytes into a ManifestResult: JSON, schema 2 (schema 1 refused),
 * an index's or a manifest's shape. `contentType` is the registry's header, when the bytes came from one.
 */
export function parseManifest(ref: Reference, digest: string, bytes: Buffer, contentTypeHeader: string | undefined): ManifestResult {
  const ctx = ctxOf(ref, ref.digest);
  let doc: { schemaVersion?: number; mediaType?: string; manifests?: unknown; config?: unknown; layers?: unknown };
  try {
    doc = JSON.parse(bytes.toString("utf8")) as typeof doc;
  } catch (cause) {
    throw new RegistryError("REGISTRY_BAD_RESPONSE", `manifest ${ref} is not JSON`, ctx, { cause });
  }
  const contentType = contentTypeHeader?.split(";")[0]?.trim();
  const mediaType = doc.mediaType ?? contentType ?? "";
  if (doc.schemaVersion === 1 || isSchema1MediaType(doc.mediaType) || (doc.mediaType === undefined && contentType && isSchema1MediaType(contentType) && doc.schemaVersion !== 2)) {
    throw new RegistryError(
      "REGISTRY_SCHEMA1_UNSUPPORTED",
      `manifest ${ref} is Docker schema 1, which is deprecated and not supported; re-push the image with a current tool`,
      { ...ctx, mediaType },
    );
  }
  if (doc.schemaVersion !== 2) throw new RegistryError("REGISTRY_BAD_RESPONSE", `manifest ${ref} has schemaVersion ${doc.schemaVersion}`, ctx);
  const isIndex = isIndexMediaType(mediaType) || (!isManifestMediaType(mediaType) && Array.isArray(doc.manifests));
  if (isIndex) {
    if (!Array.isArray(doc.manifests) || !doc.manifests.every(isDescriptor)) {
      throw new RegistryError("REGISTRY_BAD_RESPONSE", `index ${ref} has malformed manifests[]`, ctx);
    }
    return { kind: "index", ref, digest, mediaType, bytes, index: doc as ImageIndex };
  }
  if (!isDescriptor(doc.config) || !Array.isArray(doc.layers) || !doc.layers.every(isDescriptor)) {
    throw new RegistryError("REGISTRY_BAD_RESPONSE", `manifest ${ref} has a malformed config or layers[]`, { ...ctx, mediaType });
  }
  return { kind: "manifest", ref, digest, mediaType, bytes, manifest: doc as ImageManifest };
}