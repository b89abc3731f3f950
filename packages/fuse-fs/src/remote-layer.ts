import pino from "pino";
import { FuseFsError } from "./errors.js";
import { openLayer } from "./layer/open-layer.js";
import type { ServedLayer } from "./layer/layer.js";
import type { LayerSpec, LayerTree, OpenRemoteLayerOptions, RemoteLayer } from "./types.js";

/** The reading side of a served layer, for callers outside the mount (`ls`/`cat`, predictive prefetch). */
export function treeOf(layer: ServedLayer): LayerTree {
  return {
    digest: layer.digest,
    kind: layer.kind,
    lookup: (p) => layer.lookup(p),
    readdir: (p) => layer.readdir(p),
    walk: () => layer.walk(),
    async read(path, offset = 0, length) {
      const node = layer.lookup(path);
      if (!node) throw new FuseFsError("FUSEFS_NOT_FOUND", `no ${path} in layer ${layer.digest}`, { digest: layer.digest, path });
      return layer.read(path, offset, length ?? Math.max(0, node.size - offset), { sequential: true });
    },
    prefetch: (paths) => layer.prefetchFiles(paths),
    peek: async (path) => layer.peekHead?.(path),
    progress: () => layer.progress(),
  };
}

/**
 * Opens a registry layer for reading without mounting anything (the CLI's `ls`/`cat`): an eStargz
 * layer costs its footer+TOC, then only the chunks read; `progress()` tells the requests and bytes.
 */
export async function openRemoteLayer(spec: LayerSpec, o: OpenRemoteLayerOptions): Promise<RemoteLayer> {
  const layer = await openLayer(spec, {
    source: o.source,
    cache: o.cache,
    log: o.logger ?? pino({ level: "silent" }),
    ...(o.allowUnverified ? { allowUnverified: true } : {}),
    ...(o.retry ? { retry: o.retry } : {}),
  });
  return { ...treeOf(layer), flush: () => layer.flush(), close: () => layer.close() };
}
