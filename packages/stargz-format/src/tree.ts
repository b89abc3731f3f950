import { StargzError, where, type StargzErrorCode } from "./errors.js";
import { NO_PREFETCH_LANDMARK, normalizeName, parseModtime, PREFETCH_LANDMARK } from "./toc.js";
import type { ChunkRef, EntryType, FileNode, TocEntry } from "./types.js";

const TYPES = new Set<EntryType>(["dir", "reg", "symlink", "hardlink", "char", "block", "fifo", "chunk"]);
const NUMERIC_KEYS = ["size", "mode", "uid", "gid", "offset", "chunkOffset", "chunkSize", "innerOffset", "devMajor", "devMinor"] as const;

/** Most files have no xattrs: they all share this one (frozen, so a caller cannot change every file at once). */
const NO_XATTRS: Record<string, Buffer> = Object.freeze({});

/**
 * One name of the layer's tree, kept for as long as the reader lives: the object `lookup` and `walk`
 * return, with exactly FileNode's fields. What only the reader needs (a directory's child names, a
 * file's chunks) lives in private slots, which spreads, `toEqual` and JSON do not see. One object per
 * path instead of a wrapper plus a FileNode: for big TOCs these objects are most of the reader's memory.
 */
export class TreeNode implements FileNode {
  // every field assigned in the constructor, in this order: the order `{ ...node }` and JSON show
  path: string;
  type: FileNode["type"];
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeMs: number;
  xattrs: Record<string, Buffer>;
  nlink: number;
  ino: number;
  declare linkName?: string;
  declare devMajor?: number;
  declare devMinor?: number;
  declare digest?: string;
  /** a directory's child names, in TOC order until first read */
  #names: string[] | undefined;
  /** names are sorted on first read, not while the layer opens: most directories are never listed during a start */
  #sorted = true;
  /** a regular file's chunks in file order: the ChunkRef itself for the usual single-chunk file */
  #chunks: ChunkRef | ChunkRef[] | undefined;

  constructor(path: string, type: FileNode["type"], mode: number, nlink: number, ino: number) {
    this.path = path;
    this.type = type;
    this.mode = mode;
    this.uid = 0;
    this.gid = 0;
    this.size = 0;
    this.mtimeMs = 0;
    this.xattrs = NO_XATTRS;
    this.nlink = nlink;
    this.ino = ino;
    if (type === "dir") this.#names = [];
  }

  /** child names of a directory, sorted; undefined for anything else */
  get names(): string[] | undefined {
    if (!this.#sorted) {
      this.#names!.sort();
      this.#sorted = true;
    }
    return this.#names;
  }

  /** a child of this directory, while the tree is built */
  addName(name: string): void {
    this.#names!.push(name);
    this.#sorted = false;
  }

  get chunks(): ChunkRef | ChunkRef[] | undefined {
    return this.#chunks;
  }

  /** an implicit directory made explicit keeps its children */
  makeDir(): void {
    this.#names ??= [];
  }

  setChunks(chunks: ChunkRef | ChunkRef[]): void {
    this.#chunks = chunks;
  }
}

/** What a regular file's data entry (its own, or a `chunk`) says, kept only until its ChunkRefs exist. */
interface Piece {
  /** the file's node and its further chunk entries, on the file's own (first) piece */
  node?: TreeNode;
  more?: Piece[];
  name: string;
  index: number;
  chunkOffset: number;
  chunkSize: number | undefined;
  offset: number | undefined;
  innerOffset: number;
  chunkDigest: string | undefined;
}

export interface Tree {
  byPath: Map<string, TreeNode>;
  root: TreeNode;
  /** every chunk in blob order */
  ordered: ChunkRef[];
  prefetchEnd: number;
}

/**
 * Validate a parsed TOC's entries as untrusted input and build the tree. Consumes `entries`: each slot
 * is cleared once read, so the parsed TOC can be collected while the tree grows instead of after.
 */
export function buildTree(entries: unknown[], tocOffset: number, label: string | undefined): Tree {
  const builder = new Builder(tocOffset, label);
  builder.add(entries, 0, entries.length);
  return builder.finish();
}

/** Entries per stretch of `buildTreeYielding`: ~10 ms of a cold build on a busy 2-core host. */
export const TREE_SLICE_ENTRIES = 1024;

/**
 * `buildTree` in stretches of `TREE_SLICE_ENTRIES` entries with the event loop let through before each
 * (the first too: the caller has just parsed the JSON): a big TOC's build (Debian's: ~100–150 ms) then
 * holds up what else the process serves (its FUSE operations, an overlay being mounted on them) for one
 * stretch at a time, not for all of it.
 */
export async function buildTreeYielding(entries: unknown[], tocOffset: number, label: string | undefined): Promise<Tree> {
  const builder = new Builder(tocOffset, label);
  for (let from = 0; from < entries.length; from += TREE_SLICE_ENTRIES) {
    await new Promise((resolve) => setImmediate(resolve));
    builder.add(entries, from, Math.min(entries.length, from + TREE_SLICE_ENTRIES));
  }
  return builder.finish();
}

class Builder {
  private readonly byPath = new Map<string, TreeNode>();
  private readonly root: TreeNode;
  private prefetchEnd = 0;
  private nextIno = 1;
  /** directories only named as parents so far (not valid hardlink targets) */
  private readonly implicit = new Set<TreeNode>();
  /** each regular file's first piece, by path */
  private readonly regs = new Map<string, Piece>();
  /** real layers repeat a few mtimes thousands of times: parse each once */
  private readonly modtimes = new Map<string, number>();
  private readonly hardlinks: Array<{ path: string; target: string; name: string; index: number }> = [];
  private readonly offsets: number[] = [];

  constructor(
    private readonly tocOffset: number,
    private readonly label: string | undefined,
  ) {
    this.root = this.newDir("");
    this.byPath.set("", this.root);
  }

  private fail(code: StargzErrorCode, what: string, e?: { name?: unknown }, index?: number, extra: Record<string, unknown> = {}): never {
    const entry = e ? ` entry ${JSON.stringify(e.name)}${index !== undefined ? ` (#${index})` : ""}` : "";
    throw new StargzError(code, `${where(this.label)}TOC${entry}: ${what}`, { label: this.label, entry: e?.name, index, ...extra });
  }

  private newDir(path: string): TreeNode {
    const node = new TreeNode(path, "dir", 0o755, 2, this.nextIno++);
    this.implicit.add(node);
    return node;
  }

  private parentOf(path: string, e: { name?: unknown }, index: number): TreeNode {
    const slash = path.lastIndexOf("/");
    const parentPath = slash === -1 ? "" : path.slice(0, slash);
    let parent = this.byPath.get(parentPath);
    if (!parent) {
      const grand = this.parentOf(parentPath, e, index);
      parent = this.newDir(parentPath);
      this.byPath.set(parentPath, parent);
      grand.addName(parentPath.slice(parentPath.lastIndexOf("/") + 1));
    }
    if (parent.type !== "dir") this.fail("ESTARGZ_BAD_ENTRY", `parent ${JSON.stringify(parentPath)} is not a directory`, e, index);
    return parent;
  }

  add(entries: unknown[], from: number, to: number): void {
    for (let index = from; index < to; index++) {
      const e = entries[index] as TocEntry;
      entries[index] = undefined;
      this.entry(e, index);
    }
  }

  finish(): Tree {
    this.linkHardlinks();
    this.countSubdirs();
    const ordered = this.chunks();
    return { byPath: this.byPath, root: this.root, ordered, prefetchEnd: this.prefetchEnd };
  }

  private entry(e: TocEntry, index: number): void {
    if (typeof e !== "object" || e === null || Array.isArray(e)) this.fail("ESTARGZ_BAD_ENTRY", "is not an object", undefined, index);
    if (typeof e.name !== "string") this.fail("ESTARGZ_BAD_ENTRY", "has no name", e, index);
    if (!TYPES.has(e.type)) this.fail("ESTARGZ_BAD_ENTRY", `has unknown type ${JSON.stringify(e.type)}`, e, index);
    // spelled out, not a loop over the keys: a keyed load per key and entry costs more than the rest of the checks
    if (!(count(e.size) && count(e.mode) && count(e.uid) && count(e.gid) && count(e.offset) && count(e.chunkOffset) && count(e.chunkSize) && count(e.innerOffset) && count(e.devMajor) && count(e.devMinor))) {
      const k = NUMERIC_KEYS.find((key) => !count(e[key]))!;
      this.fail("ESTARGZ_BAD_ENTRY", `${k} ${JSON.stringify(e[k])} is not a non-negative integer`, e, index);
    }
    if (e.offset !== undefined) {
      if (e.offset >= this.tocOffset) this.fail("ESTARGZ_BAD_OFFSET", `offset ${e.offset} is at or past the TOC (${this.tocOffset})`, e, index);
      this.offsets.push(e.offset);
    }
    const path = normalizeName(e.name);
    if (path === undefined) this.fail("ESTARGZ_UNSAFE_NAME", "name escapes the layer root", e, index);
    if (e.type === "chunk") {
      const reg = this.regs.get(path);
      if (!reg) this.fail("ESTARGZ_BAD_ENTRY", "chunk of a file not seen before", e, index);
      (reg.more ??= []).push(piece(e, index));
      return;
    }
    if (path === PREFETCH_LANDMARK || path === NO_PREFETCH_LANDMARK) {
      if (path === PREFETCH_LANDMARK) this.prefetchEnd = e.offset ?? 0;
      return;
    }
    if (e.type === "hardlink") {
      const target = normalizeName(e.linkName ?? "");
      if (!target) this.fail("ESTARGZ_BAD_HARDLINK", `hardlink target ${JSON.stringify(e.linkName)} is invalid`, e, index);
      this.hardlinks.push({ path, target, name: e.name, index });
      return;
    }
    const existing = this.byPath.get(path);
    // a directory listed twice is common in real layers (the later attributes win); anything else twice is not
    if (existing && (e.type !== "dir" || existing.type !== "dir")) this.fail("ESTARGZ_DUPLICATE_ENTRY", "appears twice", e, index);
    if (path === "" && e.type !== "dir") this.fail("ESTARGZ_BAD_ENTRY", "the root must be a directory", e, index);
    const node = existing ?? new TreeNode(path, e.type, 0, 1, this.nextIno++);
    if (existing) this.implicit.delete(existing);
    node.type = e.type;
    node.mode = (e.mode ?? 0) & 0o7777;
    node.uid = e.uid ?? 0;
    node.gid = e.gid ?? 0;
    node.mtimeMs = this.mtimeMs(e.modtime);
    node.size = e.type === "reg" ? (e.size ?? 0) : e.type === "symlink" ? Buffer.byteLength(e.linkName ?? "") : 0;
    if (e.type === "symlink") node.linkName = e.linkName ?? "";
    if (e.type === "char" || e.type === "block") {
      node.devMajor = e.devMajor ?? 0;
      node.devMinor = e.devMinor ?? 0;
    }
    if (e.digest !== undefined) node.digest = e.digest;
    if (e.xattrs !== undefined) {
      if (typeof e.xattrs !== "object" || e.xattrs === null) this.fail("ESTARGZ_BAD_ENTRY", "xattrs is not an object", e, index);
      for (const [k, v] of Object.entries(e.xattrs)) {
        if (typeof v !== "string") this.fail("ESTARGZ_BAD_ENTRY", `xattr ${k} is not base64`, e, index);
        if (node.xattrs === NO_XATTRS) node.xattrs = {};
        node.xattrs[k] = Buffer.from(v, "base64");
      }
    }
    if (e.type === "dir") {
      node.makeDir();
      node.nlink = 2;
    }
    if (e.type === "reg") {
      const first = piece(e, index);
      first.node = node;
      this.regs.set(path, first);
    }
    if (!existing) {
      this.byPath.set(path, node);
      this.parentOf(path, e, index).addName(path.slice(path.lastIndexOf("/") + 1));
    }
  }

  private mtimeMs(modtime: string | undefined): number {
    if (typeof modtime !== "string") return parseModtime(modtime);
    let ms = this.modtimes.get(modtime);
    if (ms === undefined) this.modtimes.set(modtime, (ms = parseModtime(modtime)));
    return ms;
  }

  private linkHardlinks(): void {
    const linkTargets = new Map(this.hardlinks.map((h) => [h.path, h.target]));
    for (const h of this.hardlinks) {
      const seen = new Set<string>([h.path]);
      let target = h.target;
      // Follow hardlink→hardlink chains (some writers emit them) and refuse loops.
      for (;;) {
        if (seen.has(target)) this.fail("ESTARGZ_HARDLINK_CYCLE", `hardlinks form a cycle through ${JSON.stringify(target)}`, h, h.index);
        seen.add(target);
        const next = linkTargets.get(target);
        if (next === undefined) break;
        target = next;
      }
      const node = this.byPath.get(target);
      if (!node || this.implicit.has(node)) this.fail("ESTARGZ_BAD_HARDLINK", `hardlink target ${JSON.stringify(h.target)} does not exist`, h, h.index);
      if (node.type === "dir") this.fail("ESTARGZ_BAD_HARDLINK", "hardlink to a directory", h, h.index);
      if (this.byPath.has(h.path)) this.fail("ESTARGZ_DUPLICATE_ENTRY", "appears twice", h, h.index);
      this.byPath.set(h.path, node);
      this.parentOf(h.path, h, h.index).addName(h.path.slice(h.path.lastIndexOf("/") + 1));
      node.nlink++;
    }
  }

  private countSubdirs(): void {
    for (const [path, node] of this.byPath) {
      if (node.type === "dir" && path !== "") this.byPath.get(path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : "")!.nlink++;
    }
  }

  /** Turn each regular file's pieces into ChunkRefs, checking that they tile the file exactly. */
  private chunks(): ChunkRef[] {
    // a member ends where the next one starts (or at the TOC); duplicates do not change "first offset above"
    const offsets = Float64Array.from(this.offsets).sort();
    const endOf = (off: number): number => {
      let lo = 0;
      let hi = offsets.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (offsets[mid]! <= off) lo = mid + 1;
        else hi = mid;
      }
      return lo < offsets.length ? offsets[lo]! : this.tocOffset;
    };
    const ordered: ChunkRef[] = [];
    for (const first of this.regs.values()) {
      const node = first.node!;
      if (node.size === 0) continue;
      // most files are one piece: no array for them
      const pieces = first.more ? [first, ...first.more].sort((a, b) => a.chunkOffset - b.chunkOffset) : undefined;
      const count = pieces ? pieces.length : 1;
      let refs: ChunkRef | ChunkRef[] | undefined;
      let expected = 0;
      const firstSize = (pieces?.[0] ?? first).chunkSize;
      for (let i = 0; i < count; i++) {
        const p = pieces ? pieces[i]! : first;
        if (p.chunkOffset !== expected) this.fail("ESTARGZ_BAD_SIZE", `chunk at ${p.chunkOffset} does not follow the previous one (expected ${expected})`, p, p.index);
        if (p.offset === undefined) this.fail("ESTARGZ_BAD_OFFSET", "has data but no offset", p, p.index);
        const next = pieces?.[i + 1];
        // containerd leaves chunkSize out on the last chunk and on single-chunk files: derive it
        const derived = next ? next.chunkOffset - p.chunkOffset : node.size - p.chunkOffset;
        const size = p.chunkSize && p.chunkSize > 0 ? p.chunkSize : derived;
        // a derived last chunk larger than the file's own chunk size means `size` lies
        const tooBig = !p.chunkSize && i > 0 && firstSize !== undefined && size > firstSize;
        if (size !== derived || size <= 0 || tooBig) {
          this.fail("ESTARGZ_BAD_SIZE", `chunk size ${size} at ${p.chunkOffset} does not match the file size ${node.size}`, p, p.index);
        }
        const { chunkOffset: fileOffset, offset: compressedOffset, innerOffset, chunkDigest } = p;
        const compressedEnd = endOf(compressedOffset);
        // one literal per shape keeps every field in the object (a property added later costs a second
        // allocation); a single-chunk file's chunkDigest is its digest: one string, not two equal ones
        const ref: ChunkRef =
          chunkDigest === undefined
            ? { path: node.path, fileOffset, size, compressedOffset, compressedEnd, innerOffset }
            : { path: node.path, fileOffset, size, compressedOffset, compressedEnd, innerOffset, chunkDigest: chunkDigest === node.digest ? node.digest : chunkDigest };
        if (refs === undefined) refs = ref;
        else if (Array.isArray(refs)) refs.push(ref);
        else refs = [refs, ref];
        ordered.push(ref);
        expected = p.chunkOffset + size;
      }
      node.setChunks(refs!);
    }
    this.regs.clear();
    return ordered.sort((a, b) => a.compressedOffset - b.compressedOffset || a.fileOffset - b.fileOffset);
  }
}

/** a TOC number: absent, or a non-negative safe integer */
function count(v: unknown): boolean {
  return v === undefined || (typeof v === "number" && Number.isSafeInteger(v) && v >= 0);
}

function piece(e: TocEntry, index: number): Piece {
  return {
    name: e.name,
    index,
    chunkOffset: e.chunkOffset ?? 0,
    chunkSize: e.chunkSize,
    offset: e.offset,
    innerOffset: e.innerOffset ?? 0,
    chunkDigest: e.chunkDigest,
  };
}
