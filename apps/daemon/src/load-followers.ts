import type { LoadPredictor } from "@lazypull/image";

/**
 * Routes the daemon's one FUSE mount's "file first read" events to the image predictors that can act on
 * them: a layer shared by several images is heard by the one served most recently (its view of the
 * other layers is as good as any, and it is the one most likely starting now).
 */
export class LoadFollowers {
  private readonly byLayer = new Map<string, LoadPredictor[]>();

  /** `predictor` hears about files first read in these layers until the returned function is called */
  add(layerDigests: string[], predictor: LoadPredictor): () => void {
    for (const d of layerDigests) this.byLayer.set(d, [...(this.byLayer.get(d) ?? []), predictor]);
    return () => {
      for (const d of layerDigests) {
        const rest = (this.byLayer.get(d) ?? []).filter((p) => p !== predictor);
        if (rest.length > 0) this.byLayer.set(d, rest);
        else this.byLayer.delete(d);
      }
    };
  }

  opened(layerDigest: string, path: string): void {
    const list = this.byLayer.get(layerDigest);
    void list?.[list.length - 1]?.opened(path);
  }
}
