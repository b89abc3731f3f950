import type { FileNode } from "@lazypull/stargz-format";
import { ImageError } from "./errors.js";
import { baseName, joinPath, normalizePath, parentOf } from "./paths.js";

const WHITEOUT = ".wh.";
const OPAQUE = ".wh..wh..opq";

/** What the merged view needs of one layer: fuse-fs's `RemoteLayer` (or any tree answering the same). */
export interface LayerTree {
  lookup(path: string): FileNode | undefined;
  readdir(path: string): string[] | undefined;
  read(path: string, offset?: number, length?: number): Promise<Buffer>;
  /** fetch these files whole now (a layer that cannot leaves them to be read on demand) */
  prefetch?(paths: string[]): Promise<void>;
  /** the unverified start of a big file not yet fetched: a hint of what to fetch next, never served */
  peek?(path: string): Promise<Buffer | undefined>;
  progress(): { requests: number; bytesFetched: number };
}

const EMPTY_ROOT: FileNode = { path: "", type: "dir", mode: 0o755, uid: 0, gid: 0, size: 0, mtimeMs: 0, xattrs: {}, nlink: 2, ino: 1 };

/**
 * An image's merged root as the container would see it — OCI whiteouts and opaque directories
 * applied across layers — answered from the layers' TOCs, file bytes fetched on demand with range
 * reads. What `lazypull ls/cat IMAGE` show without a mount.
 */
export class ImageView {
  /** top-most first */
  constructor(private readonly layers: LayerTree[]) {}

  /** how `layer` hides what lower layers have at `path`: a whiteout of it or of an ancestor, or an opaque ancestor */
  private hiddenBelow(layer: LayerTree, path: string): "deleted" | "opaque" | undefined {
    const parts = path.split("/");
    for (let i = 1; i <= parts.length; i++) {
      const p = parts.slice(0, i).join("/");
      if (layer.lookup(joinPath(parentOf(p), WHITEOUT + baseName(p)))) return "deleted";
    }
    // an opaque directory hides what lower layers have below it (not the directory itself)
    for (let i = 1; i < parts.length; i++) {
      if (layer.lookup(joinPath(parts.slice(0, i).join("/"), OPAQUE))) return "opaque";
    }
    return undefined;
  }

  lookup(pathIn: string): FileNode | undefined {
    const path = normalizePath(pathIn);
    for (const layer of this.layers) {
      const node = layer.lookup(path);
      if (node) return node;
      if (path && this.hiddenBelow(layer, path)) return undefined;
    }
    // an image with no layers (or none naming the root) still has a root, as a container would
    return path === "" ? EMPTY_ROOT : undefined;
  }

  readdir(pathIn: string): string[] | undefined {
    const path = normalizePath(pathIn);
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
      if (layer.lookup(joinPath(path, OPAQUE))) break;
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
      if (n.type === "dir") for (const name of (this.readdir(n.path) ?? []).reverse()) stack.push(this.lookup(joinPath(n.path, name))!);
    }
  }

  /** the layer whose copy of `path` the container sees */
  private owner(path: string): LayerTree | undefined {
    for (const layer of this.layers) {
      if (layer.lookup(path)) return layer;
      if (this.hiddenBelow(layer, path)) return undefined;
    }
    return undefined;
  }

  async readFile(pathIn: string, offset = 0, length?: number): Promise<Buffer> {
    const path = normalizePath(pathIn);
    const layer = this.owner(path);
    if (layer) return layer.read(path, offset, length);
    throw new ImageError("IMAGE_PATH_NOT_FOUND", `${pathIn}: no such file in the image`, { path: pathIn });
  }

  /** Fetches the copies of these files the container sees, each layer's share in one call. Unknown paths are skipped. */
  async prefetch(paths: string[]): Promise<void> {
    const byLayer = new Map<LayerTree, string[]>();
    for (const p of paths) {
      const path = normalizePath(p);
      const layer = this.owner(path);
      if (layer?.prefetch) byLayer.set(layer, [...(byLayer.get(layer) ?? []), path]);
    }
    await Promise.all([...byLayer].map(([layer, list]) => layer.prefetch!(list)));
  }

  /**
   * The start of the copy of `path` the container sees, when its layer can give it before a read
   * could (a big first chunk still to fetch): inflated from a short range and **not verified**, so
   * only ever a hint of what to fetch next. Undefined otherwise.
   */
  async peekFile(pathIn: string): Promise<Buffer | undefined> {
    const path = normalizePath(pathIn);
    return this.owner(path)?.peek?.(path);
  }

  stats(): { requests: number; bytesFetched: number } {
    return this.layers.reduce((a, l) => {
      const p = l.progress();
      return { requests: a.requests + p.requests, bytesFetched: a.bytesFetched + p.bytesFetched };
    }, { requests: 0, bytesFetched: 0 });
  }
}
