const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const TOC_DIGEST = "containerd.io/snapshot/stargz/toc.digest";

/**
 * Push `ref`'s manifest again under `newTag` with layer `layer`'s TOC digest annotation replaced by a
 * digest no TOC has: the blobs and their TOCs are the real ones, only what the manifest vouches for is a
 * lie, so that layer can never be opened with verification on. `ref` is `host/repo:tag` on a plain-HTTP
 * registry; returns `host/repo:newTag`.
 */
export async function pushLyingTocDigest(ref: string, layer: number, newTag: string): Promise<string> {
  const slash = ref.indexOf("/");
  const colon = ref.lastIndexOf(":");
  if (slash === -1 || colon < slash) throw new TypeError(`pushLyingTocDigest: ${ref} is not host/repo:tag`);
  const host = ref.slice(0, slash);
  const repo = ref.slice(slash + 1, colon);
  const res = await fetch(`http://${host}/v2/${repo}/manifests/${ref.slice(colon + 1)}`, { headers: { accept: OCI_MANIFEST } });
  if (res.status !== 200) throw new TypeError(`pushLyingTocDigest: GET ${ref}'s manifest answered ${res.status}`);
  const manifest = (await res.json()) as { layers: { annotations?: Record<string, string> }[] };
  const annotations = manifest.layers[layer]?.annotations;
  if (!annotations?.[TOC_DIGEST]?.startsWith("sha256:")) throw new TypeError(`pushLyingTocDigest: layer ${layer} of ${ref} has no TOC digest annotation`);
  annotations[TOC_DIGEST] = `sha256:${"0".repeat(64)}`;
  const put = await fetch(`http://${host}/v2/${repo}/manifests/${newTag}`, { method: "PUT", headers: { "content-type": OCI_MANIFEST }, body: JSON.stringify(manifest) });
  if (put.status !== 201) throw new TypeError(`pushLyingTocDigest: PUT ${host}/${repo}:${newTag} answered ${put.status}`);
  return `${host}/${repo}:${newTag}`;
}
