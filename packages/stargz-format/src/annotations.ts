/**
 * The manifest annotations that say a layer is eStargz (DESIGN.md, "Manifest annotations"): the
 * TOC's digest, which a lazy reader verifies the TOC against, and the uncompressed size, which
 * containers/storage needs to use a layer it did not unpack itself.
 */
export const TOC_DIGEST_ANNOTATION = "containerd.io/snapshot/stargz/toc.digest";
export const UNCOMPRESSED_SIZE_ANNOTATION = "io.containers.estargz.uncompressed-size";
