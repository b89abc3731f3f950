import { defaultCacheDir, openBlobCache } from "@lazypull/blob-cache";
import { openRemoteLayer, type RemoteLayer } from "@lazypull/fuse-fs";
import { ImageView } from "@lazypull/image";
import { createRegistryClient } from "./registry.js";

/** Opens an image's layers (manifest, config, then each layer's footer+TOC) without mounting anything. */
export async function openImageView(reference: string, opts: { platform?: string; allowUnverified?: boolean } = {}) {
  const client = createRegistryClient({ platform: opts.platform });
  const cache = await openBlobCache({ dir: defaultCacheDir() });
  const layers: RemoteLayer[] = [];
  const close = async () => {
    await Promise.all(layers.map((l) => l.flush().catch(() => undefined)));
    for (const l of layers) l.close();
    await cache.close();
    await client.close();
  };
  try {
    const resolved = await client.resolve(reference, { platform: opts.platform, cache });
    const opened = await Promise.all(
      resolved.manifest.layers.map((descriptor) => openRemoteLayer({ ref: resolved.ref, descriptor }, { source: client, cache, allowUnverified: opts.allowUnverified })),
    );
    layers.push(...opened);
    const view = new ImageView([...opened].reverse());
    return { view, client, close };
  } catch (err) {
    await close();
    throw err;
  }
}
