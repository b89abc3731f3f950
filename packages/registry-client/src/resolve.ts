// From a reference to one runnable image: an index is narrowed to the wanted platform's manifest, and the
// manifest's config is fetched (digest-checked, retried like a blob) and checked against the image spec.
import { getBlob } from "./blobs.js";
import { ctxOf } from "./calls.js";
import { RegistryError } from "./errors.js";
import { checkImageConfig } from "./image-config.js";
import { getManifest } from "./manifests.js";
import { formatPlatform, selectPlatform, type Platform } from "./platform.js";
import { parseReference, type Reference } from "./reference.js";
import { shortNameCandidates, type RegistriesConf } from "./registries-conf.js";
import type { Transport } from "./transport.js";
import type { ResolvedImage } from "./types.js";

const MAX_CONFIG_BYTES = 16 << 20;

export async function resolveImage(t: Transport, ref: Reference, want: Platform, signal?: AbortSignal): Promise<ResolvedImage & { indexDigest?: string }> {
  let m = await getManifest(t, ref, signal);
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
    m = await getManifest(t, ref.withDigest(pick.digest), signal);
    if (m.kind !== "manifest") throw new RegistryError("REGISTRY_BAD_RESPONSE", `index ${ref} points at another index ${pick.digest}`, ctxOf(ref, pick.digest));
  }
  const configDigest = m.manifest.config.digest;
  const configBytes = await getBlob(t, ref, configDigest, { signal, maxBytes: MAX_CONFIG_BYTES });
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
export async function resolveShortName(t: Transport, conf: RegistriesConf, name: string, want: Platform, signal?: AbortSignal): Promise<ResolvedImage & { indexDigest?: string }> {
  const candidates = shortNameCandidates(conf, name);
  if (candidates.length === 0) return resolveImage(t, parseReference(name), want, signal);
  const failures: string[] = [];
  let last: unknown;
  for (const candidate of candidates) {
    try {
      return await resolveImage(t, parseReference(candidate), want, signal);
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
