import type { LayerDirs, LayerTree, LazyFs } from "@lazypull/fuse-fs";
import type { Descriptor, ImageConfig, ImageReference, ImageManifest, RegistryClient, ResolvedImage, ResolveSteps } from "@lazypull/registry-client";
import { ImageView } from "./merged-view.js";
import { LoadPredictor, type PredictOptions, type StartCommand, type StartPrediction } from "./predict/start-files.js";

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
  /** what predictive prefetch fetched for the start, when this process predicted it */
  prediction?: Promise<StartPrediction | undefined>;
  /**
   * When the layers were handed out before they were open (`lowerDirs` already usable: below them, the
   * mount waits for each TOC): settles once every layer is open, or rejects with why one cannot be (its
   * directory then answers EIO). Absent: the layers were open before they were handed out.
   */
  ready?: Promise<void>;
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

type LayerFs = Pick<LazyFs, "addLayer" | "releaseLayer">;

/**
 * Resolves an image and adds its layers to `fs`, the layers' footers and TOCs fetched while the config
 * is still on its way (and while `fs`, when given as a promise, is still being mounted): the config
 * costs no round trip of its own. All or nothing, like `addImageLayers`.
 */
export async function resolveAndAddLayers(
  client: Pick<RegistryClient, "resolve">,
  reference: string,
  fsIn: LayerFs | Promise<LayerFs>,
  opts: { platform?: string } & ResolveSteps = {},
): Promise<{ resolved: ResolvedImage; dirs: LayerDirs[] }> {
  const { resolved, adding } = await resolveAndStartLayers(client, reference, fsIn, opts);
  return { resolved, dirs: await adding };
}

/**
 * `resolveAndAddLayers` that returns as soon as the manifest and config are in: `adding` settles when
 * every layer is open (all or nothing), so a caller whose mount answers below a layer still opening
 * (fuse-fs does) can stack an overlay and start a container while the TOCs are read.
 */
export async function resolveAndStartLayers(
  client: Pick<RegistryClient, "resolve">,
  reference: string,
  fsIn: LayerFs | Promise<LayerFs>,
  opts: { platform?: string } & ResolveSteps = {},
): Promise<{ resolved: ResolvedImage; adding: Promise<LayerDirs[]> }> {
  const fsReady = Promise.resolve(fsIn);
  let early: { manifest: ImageManifest; adding: Promise<LayerDirs[]> } | undefined;
  const onManifest = (ref: ImageReference, manifest: ImageManifest) => {
    opts.onManifest?.(ref, manifest);
    // a short name's later candidate may bring another manifest: only the first one starts early
    if (early) return;
    const adding = fsReady.then((fs) => addImageLayers(fs, ref, manifest.layers));
    adding.catch(() => undefined);
    early = { manifest, adding };
  };
  let resolved: ResolvedImage;
  try {
    resolved = await client.resolve(reference, { ...opts, onManifest });
  } catch (err) {
    await giveBack(early, fsReady);
    throw err;
  }
  if (early && early.manifest !== resolved.manifest) {
    await giveBack(early, fsReady);
    early = undefined;
  }
  const adding = early?.adding ?? fsReady.then((fs) => addImageLayers(fs, resolved.ref, resolved.manifest.layers));
  adding.catch(() => undefined);
  return { resolved, adding };
}

/** Releases the layers an early start added, once it is done (it may still be adding them). */
async function giveBack(early: { manifest: ImageManifest; adding: Promise<LayerDirs[]> } | undefined, fsReady: Promise<LayerFs>): Promise<void> {
  if (!early) return;
  const added = await early.adding.then(() => true, () => false);
  if (!added) return; // addImageLayers gave back what it took
  const fs = await fsReady;
  for (const d of early.manifest.layers) fs.releaseLayer(d.digest);
}

/** lowerdir lists of served layers: top-most first, OCI form and kernel overlayfs form. */
export function lowerDirsOf(dirs: LayerDirs[]): { lowerDirs: string[]; overlayLowerDirs: string[] } {
  return { lowerDirs: dirs.map((d) => d.dir).reverse(), overlayLowerDirs: dirs.map((d) => d.overlayDir).reverse() };
}

/**
 * A predictor over served layers (bottom first, as in the manifest), or undefined when a layer is no
 * longer served: `start()` fetches what a start of this image with `start` reads first, `opened(path)`
 * follows the dynamic loader from then on (see `LoadPredictor`).
 */
export function loadPredictorFor(
  fs: Pick<LazyFs, "layerTree">,
  layers: Descriptor[],
  config: ImageConfig,
  start: StartCommand = {},
  opts: PredictOptions = {},
): LoadPredictor | undefined {
  const trees = layers.map((d) => fs.layerTree(d.digest));
  if (trees.some((t) => t === undefined)) return undefined;
  return new LoadPredictor(new ImageView((trees as LayerTree[]).reverse()), config, start, opts);
}
