import type { FileNode } from "@lazypull/stargz-format";
import type { FuseStat, FuseStatfs } from "fuse-native";
import type { AccessRecorder } from "./access-log.js";
import { FuseFsError } from "./errors.js";
import type { ServedLayer } from "./layer/layer.js";
import { overlayLookup, overlayReaddir, overlayXattrs } from "./overlay-view.js";

const S_IFMT: Record<FileNode["type"], number> = {
  dir: 0o040000,
  reg: 0o100000,
  symlink: 0o120000,
  char: 0o020000,
  block: 0o060000,
  fifo: 0o010000,
};

const O_ACCMODE = 3;
const O_RDONLY = 0;
const W_OK = 2;
/** inode numbers: the layer's slot in the high bits, the node's per-layer number below (fuse-native passes 32 bits) */
const INO_BITS = 24;

export interface MountedLayer {
  hex: string;
  slot: number;
  layer: ServedLayer;
}

interface Handle {
  entry: MountedLayer;
  path: string;
  /** where a sequential reader would read next */
  next: number;
  recorded: boolean;
}

/** glibc's makedev */
export function makedev(major: number, minor: number): number {
  return ((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12)) >>> 0;
}

/**
 * Each layer is served twice: `<hex>` in OCI form (`.wh.*` files, for fuse-overlayfs and people) and
 * `<hex>.overlay` in the form kernel overlayfs reads (see overlay-view.ts).
 */
export type LayerView = "oci" | "overlay";
export const OVERLAY_DIR_SUFFIX = ".overlay";

export type Resolved = { kind: "root" } | { kind: "node"; entry: MountedLayer; view: LayerView; path: string; node: FileNode };

function lookupIn(entry: MountedLayer, view: LayerView, path: string): FileNode | undefined {
  return view === "overlay" ? overlayLookup(entry.layer, path) : entry.layer.lookup(path);
}

/** `/<hex>[.overlay]/<path>`: the layer's hex (undefined for the mount's root), which view, and the path inside */
function splitPath(fusePath: string): { hex: string | undefined; view: LayerView; path: string } {
  const rel = fusePath.startsWith("/") ? fusePath.slice(1) : fusePath;
  if (rel === "") return { hex: undefined, view: "oci", path: "" };
  const slash = rel.indexOf("/");
  const top = slash < 0 ? rel : rel.slice(0, slash);
  const path = slash < 0 ? "" : rel.slice(slash + 1);
  const view: LayerView = top.endsWith(OVERLAY_DIR_SUFFIX) ? "overlay" : "oci";
  return { hex: view === "overlay" ? top.slice(0, -OVERLAY_DIR_SUFFIX.length) : top, view, path };
}

function notFound(path: string): FuseFsError {
  return new FuseFsError("FUSEFS_NOT_FOUND", `no such path ${path}`, { path });
}

/**
 * Everything the FUSE operations answer, without FUSE: the mount's root lists the layer directories
 * (named by digest hex), below them each layer's tree. The operation adapters only translate.
 */
export class FsCore {
  readonly layers = new Map<string, MountedLayer>();
  /**
   * Layers added but still opening (TOC on its way or being read), by hex: their directories exist at
   * once, so an overlay can be mounted and a container started on them; what lies below waits for
   * `ready` (see `waitFor`), and a layer that cannot be opened answers EIO there. A hex leaves this map
   * in the same step it enters `layers` (or is dropped): never in both.
   */
  readonly opening = new Map<string, { slot: number; ready: Promise<unknown> }>();
  private readonly handles = new Map<number, Handle>();
  private nextFd = 1;
  private readonly mountedAt = Date.now();
  /** FUSE operations answered since mount (the cost of the stack above: fuse-overlayfs makes many) */
  opCount = 0;

  constructor(
    private readonly recorder?: AccessRecorder,
    /** told of each file's first read through a handle (predictive prefetch follows the loader with it) */
    private readonly onFirstRead?: (layerDigest: string, path: string) => void,
  ) {}

  /**
   * What an operation on `fusePath` must wait for first: the opening of the layer it lies in. A layer's
   * own directory answers `getattr`/`access` at once (`rootToo` false), which is all mounting an overlay on
   * it takes; listing it or anything below waits.
   */
  waitFor(fusePath: string, rootToo: boolean): Promise<unknown> | undefined {
    if (this.opening.size === 0) return undefined;
    const { hex, path } = splitPath(fusePath);
    if (hex === undefined || (path === "" && !rootToo)) return undefined;
    return this.opening.get(hex)?.ready;
  }

  resolve(fusePath: string): Resolved {
    if (fusePath === "/" || fusePath === "") return { kind: "root" };
    const { hex, view, path } = splitPath(fusePath);
    const entry = this.layers.get(hex!);
    if (!entry) throw notFound(fusePath);
    const node = lookupIn(entry, view, path);
    if (!node) throw notFound(fusePath);
    return { kind: "node", entry, view, path, node };
  }

  private xattrsOf(r: Extract<Resolved, { kind: "node" }>): Record<string, Buffer> {
    return r.view === "overlay" ? overlayXattrs(r.entry.layer, r.path, r.node) : r.node.xattrs;
  }

  stat(fusePath: string): FuseStat {
    const opening = this.openingRoot(fusePath);
    // until its TOC is read, a layer's directory looks like the mount's own (ino as its tree root's will be)
    if (opening) return { ...this.rootStat(), nlink: 2, ino: (opening.slot * 2 ** INO_BITS + 1) >>> 0 };
    const r = this.resolve(fusePath);
    if (r.kind === "root") return this.rootStat();
    return this.statOf(r.entry, r.node);
  }

  private rootStat(): FuseStat {
    const t = new Date(this.mountedAt);
    const layers = this.layers.size + this.opening.size;
    return { mode: S_IFMT.dir | 0o755, uid: 0, gid: 0, size: 0, nlink: 2 + 2 * layers, ino: 1, rdev: 0, blksize: 4096, blocks: 0, atime: t, mtime: t, ctime: t };
  }

  /** the opening layer whose own directory `fusePath` is, if it is one */
  private openingRoot(fusePath: string): { slot: number } | undefined {
    if (this.opening.size === 0) return undefined;
    const { hex, path } = splitPath(fusePath);
    return hex !== undefined && path === "" ? this.opening.get(hex) : undefined;
  }

  private statOf(entry: MountedLayer, n: FileNode): FuseStat {
    const t = new Date(n.mtimeMs);
    const size = n.type === "symlink" ? Buffer.byteLength(n.linkName ?? "") : n.size;
    return {
      mode: S_IFMT[n.type] | (n.mode & 0o7777),
      uid: n.uid,
      gid: n.gid,
      size,
      nlink: n.nlink,
      ino: (entry.slot * 2 ** INO_BITS + (n.ino % 2 ** INO_BITS)) >>> 0,
      rdev: n.type === "char" || n.type === "block" ? makedev(n.devMajor ?? 0, n.devMinor ?? 0) : 0,
      blksize: 4096,
      blocks: Math.ceil(size / 512),
      atime: t,
      mtime: t,
      ctime: t,
    };
  }

  /**
   * Names and their stats: the stats give readdir each entry's type (d_type), which kernel overlayfs
   * needs to find whiteouts when it merges a directory.
   */
  readdir(fusePath: string): { names: string[]; stats: FuseStat[] } {
    const r = this.resolve(fusePath);
    if (r.kind === "root") {
      const names = [...this.layers.keys(), ...this.opening.keys()].flatMap((hex) => [hex, hex + OVERLAY_DIR_SUFFIX]).sort();
      const root = this.stat("/");
      return { names, stats: names.map(() => root) };
    }
    if (r.node.type !== "dir") throw new FuseFsError("FUSEFS_NOT_DIR", `${fusePath} is not a directory`, { path: fusePath });
    const { entry, path, view } = r;
    const names = (view === "overlay" ? overlayReaddir(entry.layer, path) : entry.layer.readdir(path)) ?? [];
    const stats: FuseStat[] = [];
    const kept: string[] = [];
    for (const name of names) {
      const child = path ? `${path}/${name}` : name;
      const node = lookupIn(entry, view, child);
      // a name the tree lists but cannot resolve would make the kernel's lookup fail later: leave it out
      if (!node) continue;
      kept.push(name);
      stats.push(this.statOf(entry, node));
    }
    return { names: kept, stats };
  }

  readlink(fusePath: string): string {
    const r = this.resolve(fusePath);
    if (r.kind === "root" || r.node.type !== "symlink") {
      throw new FuseFsError("FUSEFS_INVALID", `${fusePath} is not a symlink`, { path: fusePath });
    }
    return r.node.linkName ?? "";
  }

  getxattr(fusePath: string, name: string): Buffer {
    const r = this.resolve(fusePath);
    const v = r.kind === "node" ? this.xattrsOf(r)[name] : undefined;
    if (!v) throw new FuseFsError("FUSEFS_NO_XATTR", `${fusePath} has no xattr ${name}`, { path: fusePath, name });
    return v;
  }

  listxattr(fusePath: string): string[] {
    const r = this.resolve(fusePath);
    return r.kind === "node" ? Object.keys(this.xattrsOf(r)) : [];
  }

  access(fusePath: string, mode: number): void {
    if (!this.openingRoot(fusePath)) this.resolve(fusePath);
    if (mode & W_OK) throw new FuseFsError("FUSEFS_READ_ONLY", `${fusePath} is on a read-only filesystem`, { path: fusePath });
  }

  open(fusePath: string, flags: number): number {
    const r = this.resolve(fusePath);
    if ((flags & O_ACCMODE) !== O_RDONLY) {
      throw new FuseFsError("FUSEFS_READ_ONLY", `${fusePath} is on a read-only filesystem`, { path: fusePath, flags });
    }
    if (r.kind === "root" || r.node.type === "dir") throw new FuseFsError("FUSEFS_IS_DIR", `${fusePath} is a directory`, { path: fusePath });
    const fd = this.nextFd++;
    this.handles.set(fd, { entry: r.entry, path: r.path, next: 0, recorded: false });
    return fd;
  }

  async read(fd: number, fusePath: string, pos: number, len: number): Promise<Buffer> {
    let h = this.handles.get(fd);
    if (!h) {
      // the kernel may read through a handle opened before a layer was re-added; fall back to the path
      const r = this.resolve(fusePath);
      if (r.kind === "root") throw new FuseFsError("FUSEFS_IS_DIR", `${fusePath} is a directory`, { path: fusePath });
      h = { entry: r.entry, path: r.path, next: 0, recorded: false };
    }
    if (!h.recorded) {
      h.recorded = true;
      this.recorder?.record(h.entry.hex, h.path);
      try {
        this.onFirstRead?.(h.entry.layer.digest, h.path);
      } catch {
        // a listener's failure is never the reader's
      }
    }
    const sequential = pos === h.next;
    h.next = pos + len;
    return h.entry.layer.read(h.path, pos, len, { sequential });
  }

  release(fd: number): void {
    this.handles.delete(fd);
  }

  statfs(): FuseStatfs {
    let files = 0;
    let bytes = 0;
    for (const { layer } of this.layers.values()) {
      files += layer.nodeCount;
      bytes += layer.progress().bytesTotal;
    }
    const bsize = 4096;
    return { bsize, frsize: bsize, blocks: Math.ceil(bytes / bsize), bfree: 0, bavail: 0, files, ffree: 0, favail: 0, fsid: 0, flag: 1, namemax: 255 };
  }
}
