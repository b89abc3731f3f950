import { LazypullError } from "@lazypull/errors";
import { defaultCacheDir, openBlobCache } from "@lazypull/blob-cache";
import { openRemoteLayer, type RemoteLayer } from "@lazypull/fuse-fs";
import { parseReference } from "@lazypull/registry-client";
import type { FileNode } from "@lazypull/stargz-format";
import { createRegistryClient } from "./registry.js";

const WHITEOUT = ".wh.";
const OPAQUE = ".wh..wh..opq";

function parent(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "" : path.slice(0, i);
}
function base(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}
function join(dir: string, name: string): string {
  return dir ? `${dir}/${name}` : name;
}
function normalize(path: string): string {
  return path.split("/").filter((p) => p && p !== ".").join("/");
}

const EMPTY_ROOT: FileNode = { path: "", type: "dir", mode: 0o755, uid: 0, gid: 0, size: 0, mtimeMs: 0, xattrs: {}, nlink: 2, ino: 1 };

/**
 * An image's merged root as the container would see it — OCI whiteouts and opaque directories
 * applied across layers — answered from the layers' TOCs, file bytes fetched on demand with range
 * reads. For `lazypull ls/cat IMAGE` without a mount.
 */
export class ImageView {
  /** top-most first */
  constructor(private readonly layers: RemoteLayer[]) {}

  /** whether `path` is deleted by a whiteout in `layer`, or hidden by an opaque ancestor by a whiteout in `layer`, or hidden by an opaque ancestor */
  private hiddenBelow(layer: RemoteLayer, path: string): "deleted" | "opaque" | undefined {
    const parts = path.split("/");
    for (let i = 1; i <= parts.length; i++) {
      const p = parts.slice(0, i).join("/");
      if (layer.lookup(join(parent(p), WHITEOUT + base(p)))) return "deleted";
    }
    // an opaque directory hides what lower layers have below it (not the directory itself)
    for (let i = 1; i < parts.length; i++) {
      if (layer.lookup(join(parts.slice(0, i).join("/"), OPAQUE))) return "opaque";
    }
    return undefined;
  }

  lookup(pathIn: string): FileNode | undefined {
    const path = normalize(pathIn);
    for (const layer of this.layers) {
      const node = layer.lookup(path);
      if (node) return node;
      if (path && this.hiddenBelow(layer, path)) return undefined;
    }
    // an image with no layers (or none naming the root) still has a root, as a container would
    return path === "" ? EMPTY_ROOT : undefined;
  }

  readdir(pathIn: string): string[] | undefined {
    const path = normalize(pathIn);
    if (this.lookup(path)?.type !== "dir") return undefined;
    const names = new Set<string>();
    const hidden = new Set<string>();
    for (const layer of this.layers) {
      if (path && this.hiddenBelow(layer, path) === "deleted" && !layer.lookup(path)) break;
      for (const name of layer.readdir(path) ?? []) {
        if (name === OPAQUE) continue;
        if (name.startsWith(WHITEOUT)) hidden.add(name.slice(WHITEOUT.length));
        else if (!hidden.has(name)) names.add(name);
      }
      if (layer.lookup(join(path, OPAQUE))) break;
    }
    return [...names].sort();
  }

  *walk(): Iterable<FileNode> {
    const root = this.lookup("");
    if (!root) return;
    const stack: FileNode[] = [root];
    while (stack.length) {
      const n = stack.pop()!;
      yield n;
      if (n.type === "dir") for (const name of (this.readdir(n.path) ?? []).reverse()) stack.push(this.lookup(join(n.path, name))!);
    }
  }

  async readFile(pathIn: string, offset = 0, length?: number): Promise<Buffer> {
    const path = normalize(pathIn);
    for (const layer of this.layers) {
      if (layer.lookup(path)) return layer.read(path, offset, length);
      if (this.hiddenBelow(layer, path)) break;
    }
    throw new LazypullError("IMAGE_PATH_NOT_FOUND", `${pathIn}: no such file in the image`, { path: pathIn });
  }

  stats(): { requests: number; bytesFetched: number } {
    return this.layers.reduce((a, l) => {
      const p = l.progress();
      return { requests: a.requests + p.requests, bytesFetched: a.bytesFetched + p.bytesFetched };
    }, { requests: 0, bytesFetched: 0 });
  }
}

/** Opens an image's layers (manifest, config, then each layer's footer+TOC) without mounting anything. */
export async function openImageView(reference: string, opts: { platform?: string; allowUnverified?: boolean } = {}) {
  const client = createRegistryClient({ platform: opts.platform });
  const cache = await openBlobCache({ dir: defaultCacheDir() });
  const layers: RemoteLayer[] = [];
  const close = async () => {
    await Promise.allSettled(layers.map((l) => l.close()));
    await cache.close();
    await client.close();
  };
  try {
    const resolved = await client.resolve(parseReference(reference), { platform: opts.platform });
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
