// From a reference to one runnable image: an index is narrowed to the wanted platform's manifest, and the
// manifest's config is fetched (digest-checked, retried like a blob) and checked against the image spec.
// With a ContentCache, what a digest names (manifests by digest, configs) comes from it when it verifies.
import { getBlob } from "./blobs.js";
import { ctxOf } from "./calls.js";
import { RegistryError } from "./errors.js";
import { checkImageConfig } from "./image-config.js";
import { getManifest, parseManifest } from "./manifests.js";
import { formatPlatform, selectPlatform, type Platform } from "./platform.js";
import { parseReference, type Reference } from "./reference.js";
import { shortNameCandidates, type RegistriesConf } from "./registries-conf.js";
import type { Transport } from "./transport.js";
import type { ContentCache, ImageManifest, ImageReference, ManifestResult, ResolvedImage } from "./types.js";
import { verifyBytes } from "./verify.js";

const MAX_CONFIG_BYTES = 16 << 20;

/** cache ids: a digest names one document, but a manifest and a config of one digest would be the same bytes anyway */
const MANIFEST_ID = "oci:manifest";
const CONFIG_ID = "oci:config";

/**
 * An entry of the cache, hashed against its digest: a hit only when it matches (and parses, for manifests).
 * A bad entry is a miss, and the fetch after it overwrites it.
 */
async function cached<T>(cache: ContentCache | undefined, digest: string, id: string, use: (bytes: Buffer) => T): Promise<T | undefined> {
  const bytes = await cache?.get({ blob: digest, id }).catch(() => undefined);
  if (!bytes) return undefined;
  try {
    verifyBytes(bytes, digest, { digest });
    return use(bytes);
  } catch {
    return undefined;
  }
}

function keep(cache: ContentCache | undefined, digest: string, id: string, bytes: Buffer): Promise<void> {
  // a cache that cannot store (full disk, closed) costs the next run a request, not this one its result
  return cache ? cache.put({ blob: digest, id }, bytes).catch(() => undefined) : Promise.resolve();
}

/** A manifest or index: from the cache when named by digest, else fetched (and kept under its digest). */
async function manifestOf(t: Transport, ref: Reference, signal: AbortSignal | undefined, cache: ContentCache | undefined): Promise<ManifestResult> {
  if (ref.digest) {
    const hit = await cached(cache, ref.digest, MANIFEST_ID, (bytes) => parseManifest(ref, ref.digest!, bytes, undefined));
    if (hit) return hit;
  }
  const m = await getManifest(t, ref, signal);
  await keep(cache, m.digest, MANIFEST_ID, m.bytes);
  return m;
}

/** What a resolve may be given: an abort signal, a cache for what digests name, and a look at the manifest before the config arrives. */
export interface ResolveSteps {
  signal?: AbortSignal;
  cache?: ContentCache;
  /**
   * called once with the platform's manifest, before its config is fetched: the caller can start on
   * the layers (their TOCs) while the config is on its way
   */
  onManifest?: (ref: ImageReference, manifest: ImageManifest) => void;
}

export async function resolveImage(t: Transport, ref: Reference, want: Platform, steps: ResolveSteps = {}): Promise<ResolvedImage & { indexDigest?: string }> {
  const { signal, cache } = steps;
  let m = await manifestOf(t, ref, signal, cache);
  let indexDigest: string | undefined;
  if (m.kind === "index") {
    indexDigest = m.digest;
    const pick = selectPlatform(m.index.manifests, want);
    if (!pick) {
      const have = m.index.manifests.map((d) => (d.platform ? formatPlatform(d.platform) : "?")).join(", ");
      throw new RegistryError("REGISTRY_NO_MATCHING_PLATFORM", `${ref} has no image for ${formatPlatform(want)} (has: ${have})`, {
        ...ctxOf(ref, m.digest),
        platform: formatPlatform(want),
      });
    }
    m = await manifestOf(t, ref.withDigest(pick.digest), signal, cache);
    if (m.kind !== "manifest") throw new RegistryError("REGISTRY_BAD_RESPONSE", `index ${ref} points at another index ${pick.digest}`, ctxOf(ref, pick.digest));
  }
  steps.onManifest?.(ref, m.manifest);
  const configDigest = m.manifest.config.digest;
  let configBytes = await cached(cache, configDigest, CONFIG_ID, (b) => b);
  if (!configBytes) {
    configBytes = await getBlob(t, ref, configDigest, { signal, maxBytes: MAX_CONFIG_BYTES });
    await keep(cache, configDigest, CONFIG_ID, configBytes);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(configBytes.toString("utf8"));
  } catch (cause) {
    throw new RegistryError("REGISTRY_BAD_RESPONSE", `config ${configDigest} of ${ref} is not JSON`, ctxOf(ref, configDigest), { cause });
  }
  const config = checkImageConfig(parsed, m.manifest.layers.length, `config ${configDigest} of ${ref}`, ctxOf(ref, configDigest));
  return { ref, manifestDigest: m.digest, manifest: m.manifest, manifestBytes: m.bytes, config, indexDigest };
}

/** what makes podman go on to the next search registry: the image is not there, or not for us */
const NEXT_CANDIDATE = new Set(["REGISTRY_NOT_FOUND", "REGISTRY_UNAUTHORIZED", "REGISTRY_DENIED", "REGISTRY_UNAVAILABLE"]);

/** A short name through registries.conf's aliases and search registries, in order; docker.io when it has none. */
export async function resolveShortName(
  t: Transport,
  conf: RegistriesConf,
  name: string,
  want: Platform,
  steps: ResolveSteps = {},
): Promise<ResolvedImage & { indexDigest?: string }> {
  const { signal } = steps;
  const candidates = shortNameCandidates(conf, name);
  if (candidates.length === 0) return resolveImage(t, parseReference(name), want, steps);
  const failures: string[] = [];
  let last: unknown;
  for (const candidate of candidates) {
    try {
      return await resolveImage(t, parseReference(candidate), want, steps);
    } catch (err) {
      if (signal?.aborted || !(err instanceof RegistryError) || !NEXT_CANDIDATE.has(err.code)) throw err;
      failures.push(`${candidate}: ${err.code}`);
      last = err;
    }
  }
  throw new RegistryError(
    "REGISTRY_NOT_FOUND",
    `short name "${name}" was not found in any search registry (${failures.join("; ")}); use a fully qualified name or fix unqualified-search-registries in ${conf.files.join(", ") || "registries.conf"}`,
    { reference: name, candidates },
    { cause: last },
  );
}
