import { describe, expect, it } from "vitest";
import type { LayerDirs, LayerSpec } from "@lazypull/fuse-fs";
import type { Descriptor, ImageReference } from "@lazypull/registry-client";
import type { ImageManifest, RegistryClient, ResolvedImage } from "@lazypull/registry-client";
import { addImageLayers, lowerDirsOf, resolveAndAddLayers } from "./image-layers.js";

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

const manifest = (...layers: Descriptor[]): ImageManifest =>
  ({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: "sha256:c", size: 1 }, layers });

/** A resolve that shows each manifest to `onManifest` in turn, then waits for `configArrives` and gives the last (or fails). */
function fakeClient(manifests: ImageManifest[], configArrives: Promise<void>, fail = false): Pick<RegistryClient, "resolve"> {
  return {
    resolve: (async (_r: unknown, o: { onManifest?: (ref: ImageReference, m: ImageManifest) => void }) => {
      for (const m of manifests) o.onManifest?.(ref, m);
      await configArrives;
      if (fail) throw Object.assign(new Error("config is not JSON"), { code: "REGISTRY_BAD_RESPONSE" });
      return { ref, manifest: manifests[manifests.length - 1]!, manifestDigest: "sha256:m", manifestBytes: Buffer.alloc(0), config: { rootfs: { type: "layers", diff_ids: [] } } } as unknown as ResolvedImage;
    }),
  };
}

describe("resolveAndAddLayers", () => {
  it("should add the layers while the config is still on its way, on a mount still being made", async () => {
    const fs = fakeFs(new Set());
    let configArrives!: () => void;
    let mounted!: (f: typeof fs) => void;
    const mounting = new Promise<typeof fs>((r) => (mounted = r));
    const done = resolveAndAddLayers(fakeClient([manifest(layer(1), layer(2))], new Promise((r) => (configArrives = r))), "example.test/r", mounting);
    mounted(fs);
    await new Promise((r) => setTimeout(r, 10));
    // both layers added before the config came
    expect([...fs.refs.values()]).toEqual([1, 1]);
    configArrives();
    const { dirs } = await done;
    expect(dirs).toHaveLength(2);
    expect([...fs.refs.values()]).toEqual([1, 1]);
  });

  it("should give the early layers back when the config fails, and when a later candidate's manifest wins", async () => {
    const fs = fakeFs(new Set());
    await expect(resolveAndAddLayers(fakeClient([manifest(layer(1))], Promise.resolve(), true), "r", fs)).rejects.toMatchObject({ code: "REGISTRY_BAD_RESPONSE" });
    expect(fs.refs.get(layer(1).digest)).toBe(0);
    const { dirs } = await resolveAndAddLayers(fakeClient([manifest(layer(1)), manifest(layer(3))], Promise.resolve()), "r", fs);
    expect(dirs.map((d) => d.dir)).toEqual([`/m/${"3".repeat(64)}`]);
    expect(Object.fromEntries(fs.refs)).toEqual({ [layer(1).digest]: 0, [layer(3).digest]: 1 });
  });
});
