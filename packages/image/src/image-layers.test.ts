import { describe, expect, it } from "vitest";
import type { LayerDirs, LayerSpec } from "@lazypull/fuse-fs";
import type { Descriptor, ImageReference } from "@lazypull/registry-client";
import { addImageLayers, lowerDirsOf } from "./image-layers.js";

const ref = { registry: "example.test", repository: "r", toString: () => "example.test/r" } as ImageReference;
const layer = (n: number): Descriptor => ({ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: `sha256:${String(n).repeat(64)}`, size: n });

/** A LazyFs stand-in that counts references per digest and fails the digests it is told to. */
function fakeFs(failing: Set<string>) {
  const refs = new Map<string, number>();
  return {
    refs,
    async addLayer(spec: LayerSpec): Promise<LayerDirs> {
      if (failing.has(spec.descriptor.digest)) throw Object.assign(new Error("bad layer"), { code: "FUSEFS_BAD_LAYER" });
      refs.set(spec.descriptor.digest, (refs.get(spec.descriptor.digest) ?? 0) + 1);
      const hex = spec.descriptor.digest.slice(7);
      return { dir: `/m/${hex}`, overlayDir: `/m/${hex}.overlay` };
    },
    releaseLayer(digest: string) {
      refs.set(digest, (refs.get(digest) ?? 0) - 1);
    },
  };
}

describe("addImageLayers", () => {
  it("should add every layer once and give the dirs in manifest order, lowerdirs top-most first", async () => {
    const fs = fakeFs(new Set());
    const dirs = await addImageLayers(fs, ref, [layer(1), layer(2)]);
    expect(dirs.map((d) => d.dir)).toEqual([`/m/${"1".repeat(64)}`, `/m/${"2".repeat(64)}`]);
    expect(lowerDirsOf(dirs).lowerDirs).toEqual([`/m/${"2".repeat(64)}`, `/m/${"1".repeat(64)}`]);
    expect(lowerDirsOf(dirs).overlayLowerDirs[0]).toBe(`/m/${"2".repeat(64)}.overlay`);
    expect([...fs.refs.values()]).toEqual([1, 1]);
  });

  it("should give back the references the other layers got when one fails", async () => {
    const fs = fakeFs(new Set([layer(2).digest]));
    await expect(addImageLayers(fs, ref, [layer(1), layer(2), layer(3)])).rejects.toMatchObject({ code: "FUSEFS_BAD_LAYER" });
    expect(Object.fromEntries(fs.refs)).toEqual({ [layer(1).digest]: 0, [layer(3).digest]: 0 });
  });
});
