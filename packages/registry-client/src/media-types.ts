// Media types of manifests and indexes, what we accept, and how to tell them (and schema 1) apart.
export const MediaType = {
  OciManifest: "application/vnd.oci.image.manifest.v1+json",
  OciIndex: "application/vnd.oci.image.index.v1+json",
  OciConfig: "application/vnd.oci.image.config.v1+json",
  OciLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  DockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  DockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  DockerConfig: "application/vnd.docker.container.image.v1+json",
  DockerSchema1: "application/vnd.docker.distribution.manifest.v1+json",
  DockerSchema1Signed: "application/vnd.docker.distribution.manifest.v1+prettyjws",
} as const;

export const MANIFEST_ACCEPT = [MediaType.OciIndex, MediaType.DockerManifestList, MediaType.OciManifest, MediaType.DockerManifest];

export function isIndexMediaType(t: string | undefined): boolean {
  return t === MediaType.OciIndex || t === MediaType.DockerManifestList;
}

export function isManifestMediaType(t: string | undefined): boolean {
  return t === MediaType.OciManifest || t === MediaType.DockerManifest;
}

export function isSchema1MediaType(t: string | undefined): boolean {
  return t === MediaType.DockerSchema1 || t === MediaType.DockerSchema1Signed || t === "application/json";
}
