/** The manifest annotations lazy readers look for on each eStargz layer (DESIGN.md, "Manifest annotations"). */
export const TOC_DIGEST_ANNOTATION = "containerd.io/snapshot/stargz/toc.digest";
export const UNCOMPRESSED_SIZE_ANNOTATION = "io.containers.estargz.uncompressed-size";

export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
export const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
export const OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";
