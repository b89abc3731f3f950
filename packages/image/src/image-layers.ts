import type { LayerDirs, LazyFs } from "@lazypull/fuse-fs";
import type { Descriptor, ImageConfig, ImageReference } from "@lazypull/registry-client";

/**
 * An image's layers served as directories, ready for an overlay; `release()` gives them back. The
 * contract between whoever serves the layers (this process's LazyFs, or lazypulld through
 * `@lazypull/daemon-client`) and whoever runs or mounts the image.
 */
export interface ImageLayers {
  reference: string;
  manifestDigest: string;
  config: ImageConfig;
  /** top-most layer first, as an overlay's lowerdir wants; OCI form (fuse-overlayfs) */
  lowerDirs: string[];
  /** the same layers, top-most first, in kernel overlayfs form (when the server provides them) */
  overlayLowerDirs?: string[];
  /** the FUSE mount serving them (lazypulld's is shared with other images) */
  fuseMountpoint?: string;
  /** network cost so far; `fuseOps`: operations the FUSE mount answered, when it serves only this image */
  /** `hosts`: response bytes per registry or mirror host that served them, where known */
  stats(): Promise<{ bytesFetched: number; requests: number; fuseOps?: number; hosts?: Record<string, number> }>;
  release(): Promise<void>;
}

/**
 * Adds every layer of an image to a LazyFs (one reference each, all at once). All or nothing: when
 * one layer fails, the references the others got are given back before the error is thrown, so a
 * shared mount keeps no layer for an image nobody holds. Returns the dirs bottom layer first, as in
 * the manifest.
 */
export async function addImageLayers(fs: Pick<LazyFs, "addLayer" | "releaseLayer">, ref: ImageReference, layers: Descriptor[]): Promise<LayerDirs[]> {
  const results = await Promise.allSettled(layers.map((descriptor) => fs.addLayer({ ref, descriptor })));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) {
    results.forEach((r, i) => r.status === "fulfilled" && fs.releaseLayer(layers[i]!.digest));
    throw failed.reason;
  }
  return results.map((r) => (r as PromiseFulfilledResult<LayerDirs>).value);
}

/** lowerdir lists of served layers: top-most first, OCI form and kernel overlayfs form. */
export function lowerDirsOf(dirs: LayerDirs[]): { lowerDirs: string[]; overlayLowerDirs: string[] } {
  return { lowerDirs: dirs.map((d) => d.dir).reverse(), overlayLowerDirs: dirs.map((d) => d.overlayDir).reverse() };
}
