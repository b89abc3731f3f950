import type { FuseStat } from "fuse-native";
import type { Logger } from "pino";
import { LayerStoreError } from "./errors.js";
import { encodeReference, LAYER_FILES, parseStorePath, type LayerFile, type StorePath } from "./store-path.js";
import type { StoreBackend, StoreLayer } from "./types.js";

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

interface Handle {
  layer: StoreLayer;
  /** `info` is served from these bytes; `blob` from the backend */
  bytes?: Buffer;
}

/**
 * The store's answers, one method per FUSE operation, independent of FUSE itself (so it is tested
 * with a fake backend). Nothing here is cached: each answer asks the backend.
 */
export class StoreTree {
  private readonly handles = new Map<number, Handle>();
  private nextFd = 1;
  private readonly born = new Date();

  constructor(
    private readonly backend: StoreBackend,
    private readonly log: Logger,
  ) {}

  async stat(path: string): Promise<FuseStat> {
    const p = this.parse(path);
    switch (p.kind) {
      case "root":
      case "image":
        return this.dirStat();
      case "layer":
        await this.layer(p);
        return this.dirStat();
      case "use":
        throw notFound(path);
      case "file":
        return this.fileStat(await this.layer(p), p.name);
    }
  }

  async readdir(path: string): Promise<{ names: string[]; stats: FuseStat[] }> {
    const p = this.parse(path);
    let names: string[];
    if (p.kind === "layer") {
      const layer = await this.layer(p);
      return { names: [...LAYER_FILES], stats: LAYER_FILES.map((name) => this.fileStat(layer, name)) };
    }
    if (p.kind === "root") names = this.childrenOf("");
    else if (p.kind === "image") names = this.childrenOf(p.encoded);
    else throw new LayerStoreError("LAYER_STORE_NOT_FOUND", `${path} is not a directory`, { path });
    return { names, stats: names.map(() => this.dirStat()) };
  }

  async readlink(path: string): Promise<string> {
    const p = this.parse(path);
    if (p.kind !== "file" || p.name !== "diff") throw notFound(path);
    return (await this.layer(p)).diffDir;
  }

  async open(path: string): Promise<number> {
    const p = this.parse(path);
    if (p.kind !== "file" || p.name === "diff") throw notFound(path);
    const layer = await this.layer(p);
    const fd = this.nextFd++;
    this.handles.set(fd, p.name === "info" ? { layer, bytes: infoBytes(layer) } : { layer });
    return fd;
  }

  async read(fd: number, pos: number, len: number): Promise<Buffer> {
    const h = this.handles.get(fd);
    if (!h) throw new LayerStoreError("LAYER_STORE_BAD_HANDLE", `no open file with handle ${fd}`, { fd });
    if (h.bytes) return h.bytes.subarray(pos, pos + len);
    const size = h.layer.info["compressed-size"];
    if (pos >= size) return Buffer.alloc(0);
    return h.layer.readBlob(pos, Math.min(len, size - pos));
  }

  release(fd: number): void {
    this.handles.delete(fd);
  }

  /** containers/storage creates `<layer>/use` when it starts using a layer; the answer is ENOENT either way */
  create(path: string): never {
    const p = parseStorePath(path);
    if (p?.kind === "use") {
      this.backend.use(p.reference, p.digest);
      throw notFound(path);
    }
    throw readOnly(path);
  }

  /** containers/storage removes `<layer>` when it is done with it; ENOENT tells it the store took note */
  rmdir(path: string): never {
    const p = parseStorePath(path);
    if (p?.kind === "layer") {
      this.backend.release(p.reference, p.digest);
      throw notFound(path);
    }
    throw readOnly(path);
  }

  /** `use` never exists (create answers ENOENT), so there is nothing to unlink */
  unlink(path: string): never {
    throw parseStorePath(path)?.kind === "use" ? notFound(path) : readOnly(path);
  }

  private parse(path: string): StorePath {
    const p = parseStorePath(path);
    if (!p) throw notFound(path);
    return p;
  }

  private async layer(p: { reference: string; digest: string }): Promise<StoreLayer> {
    let layer: StoreLayer | undefined;
    try {
      layer = await this.backend.lookup(p.reference, p.digest);
    } catch (err) {
      // podman treats any failed stat as "not in the store" and pulls the layer itself
      this.log.warn({ err, reference: p.reference, digest: p.digest }, "layer store lookup failed; podman will pull the layer");
    }
    if (!layer) throw notFound(`${p.reference} ${p.digest}`);
    return layer;
  }

  /** What directory `dir` (an encoded reference or a leading part of one; "" for the root) lists. */
  private childrenOf(dir: string): string[] {
    const names = new Set<string>();
    for (const { reference, digests } of this.backend.known?.() ?? []) {
      const encoded = encodeReference(reference);
      if (encoded === dir) digests.forEach((d) => names.add(d));
      else if (dir === "") names.add(encoded.split("/")[0]!);
      else if (encoded.startsWith(`${dir}/`)) names.add(encoded.slice(dir.length + 1).split("/")[0]!);
    }
    return [...names].sort();
  }

  /** `diff` a symlink to the backend's directory, `info` the JSON, `blob` the compressed bytes */
  private fileStat(layer: StoreLayer, name: LayerFile): FuseStat {
    if (name === "diff") return this.stat0(S_IFLNK | 0o777, Buffer.byteLength(layer.diffDir));
    if (name === "info") return this.stat0(S_IFREG | 0o444, infoBytes(layer).length);
    return this.stat0(S_IFREG | 0o444, layer.info["compressed-size"]);
  }

  private dirStat(): FuseStat {
    return { ...this.stat0(S_IFDIR | 0o755, 4096), nlink: 2 };
  }

  private stat0(mode: number, size: number): FuseStat {
    return { mode, uid: 0, gid: 0, size, nlink: 1, ino: 0, rdev: 0, blksize: 4096, blocks: Math.ceil(size / 512), atime: this.born, mtime: this.born, ctime: this.born };
  }
}

function infoBytes(layer: StoreLayer): Buffer {
  return Buffer.from(JSON.stringify(layer.info));
}

function notFound(what: string): LayerStoreError {
  return new LayerStoreError("LAYER_STORE_NOT_FOUND", `${what} is not in the layer store`, { path: what });
}

function readOnly(path: string): LayerStoreError {
  return new LayerStoreError("LAYER_STORE_READ_ONLY", `the layer store is read-only (${path})`, { path });
}
