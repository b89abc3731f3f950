import { StreamByteSource } from "./byte-source.js";
import { StargzError, where, type StargzErrorCode } from "./errors.js";
import { requireFooter, LEGACY_FOOTER_SIZE } from "./footer.js";
import { inflateBounded, inflatePrefix } from "./inflate.js";
import { readTar } from "./tar/reader.js";
import { NO_PREFETCH_LANDMARK, normalizeName, parseModtime, PREFETCH_LANDMARK, sha256, TOC_TAR_NAME } from "./toc.js";
import type { ChunkRef, EntryType, FileNode, OpenOptions, RangeReader, StargzReader, Toc, TocEntry } from "./types.js";

const DEFAULT_MAX_TOC = 64 << 20;
/** Read this much of the tail at once: the footer and, for TOCs under 1 MiB, the whole TOC member. */
export const SPECULATIVE_TAIL = (1 << 20) + 51;

const TYPES = new Set<EntryType>(["dir", "reg", "symlink", "hardlink", "char", "block", "fifo", "chunk"]);
const NUMERIC_KEYS = ["size", "mode", "uid", "gid", "offset", "chunkOffset", "chunkSize", "innerOffset", "devMajor", "devMinor"] as const;

interface Node {
  file: FileNode;
  explicit: boolean;
  children?: Map<string, Node>;
  chunks: ChunkRef[];
  /** TOC entries of a regular file's data, before they become ChunkRefs */
  raw?: Array<{ e: TocEntry; index: number }>;
}

class Reader implements StargzReader {
  private readonly byPath = new Map<string, Node>();
  private readonly root: Node;
  private readonly ordered: ChunkRef[] = [];
  prefetchEnd = 0;

  constructor(
    readonly toc: Toc,
    readonly tocDigest: string,
    readonly format: "estargz" | "stargz",
    readonly tocOffset: number,
    private readonly range: RangeReader,
    private readonly label: string | undefined,
  ) {
    this.root = this.newDir("", false);
    this.byPath.set("", this.root);
    this.build();
  }

  private fail(code: StargzErrorCode, what: string, e?: { name?: unknown }, index?: number, extra: Record<string, unknown> = {}): never {
    const entry = e ? ` entry ${JSON.stringify(e.name)}${index !== undefined ? ` (#${index})` : ""}` : "";
    throw new StargzError(code, `${where(this.label)}TOC${entry}: ${what}`, { label: this.label, entry: e?.name, index, ...extra });
  }

  private nextIno = 1;
  private newDir(path: string, explicit: boolean): Node {
    return {
      file: { path, type: "dir", mode: 0o755, uid: 0, gid: 0, size: 0, mtimeMs: 0, xattrs: {}, nlink: 2, ino: this.nextIno++ },
      explicit,
      children: new Map(),
      chunks: [],
    };
  }

  private parentOf(path: string, e: TocEntry, index: number): Node {
    const slash = path.lastIndexOf("/");
    const parentPath = slash === -1 ? "" : path.slice(0, slash);
    let parent = this.byPath.get(parentPath);
    if (!parent) {
      const grand = this.parentOf(parentPath, e, index);
      parent = this.newDir(parentPath, false);
      this.byPath.set(parentPath, parent);
      grand.children!.set(parentPath.slice(parentPath.lastIndexOf("/") + 1), parent);
    }
    if (parent.file.type !== "dir") this.fail("ESTARGZ_BAD_ENTRY", `parent ${JSON.stringify(parentPath)} is not a directory`, e, index);
    return parent;
  }

  private build(): void {
    const hardlinks: Array<{ path: string; target: string; e: TocEntry; index: number }> = [];
    const regs = new Map<string, Node>();
    let offsets: number[] = [];
    this.toc.entries.forEach((e, index) => {
      if (typeof e !== "object" || e === null || Array.isArray(e)) this.fail("ESTARGZ_BAD_ENTRY", "is not an object", undefined, index);
      if (typeof e.name !== "string") this.fail("ESTARGZ_BAD_ENTRY", "has no name", e, index);
      if (!TYPES.has(e.type)) this.fail("ESTARGZ_BAD_ENTRY", `has unknown type ${JSON.stringify(e.type)}`, e, index);
      for (const k of NUMERIC_KEYS) {
        const v = e[k];
        if (v !== undefined && (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0)) {
          this.fail("ESTARGZ_BAD_ENTRY", `${k} ${JSON.stringify(v)} is not a non-negative integer`, e, index);
        }
      }
      if (e.offset !== undefined) {
        if (e.offset >= this.tocOffset) this.fail("ESTARGZ_BAD_OFFSET", `offset ${e.offset} is at or past the TOC (${this.tocOffset})`, e, index);
        offsets.push(e.offset);
      }
      const path = normalizeName(e.name);
      if (path === undefined) this.fail("ESTARGZ_UNSAFE_NAME", "name escapes the layer root", e, index);
      if (e.type === "chunk") {
        const reg = regs.get(path);
        if (!reg) this.fail("ESTARGZ_BAD_ENTRY", "chunk of a file not seen before", e, index);
        reg.raw!.push({ e, index });
        return;
      }
      if (path === PREFETCH_LANDMARK || path === NO_PREFETCH_LANDMARK) {
        if (path === PREFETCH_LANDMARK) this.prefetchEnd = e.offset ?? 0;
        return;
      }
      if (e.type === "hardlink") {
        const target = normalizeName(e.linkName ?? "");
        if (!target) this.fail("ESTARGZ_BAD_HARDLINK", `hardlink target ${JSON.stringify(e.linkName)} is invalid`, e, index);
        hardlinks.push({ path, target, e, index });
        return;
      }
      const existing = this.byPath.get(path);
      // a directory listed twice is common in real layers (the later attributes win); anything else twice is not
      if (existing && (e.type !== "dir" || existing.file.type !== "dir")) this.fail("ESTARGZ_DUPLICATE_ENTRY", "appears twice", e, index);
      if (path === "" && e.type !== "dir") this.fail("ESTARGZ_BAD_ENTRY", "the root must be a directory", e, index);
      const node: Node = existing ?? {
        file: { path, type: "dir", mode: 0, uid: 0, gid: 0, size: 0, mtimeMs: 0, xattrs: {}, nlink: 1, ino: this.nextIno++ },
        explicit: true,
        chunks: [],
      };
      node.explicit = true;
      const f = node.file;
      f.type = e.type as FileNode["type"];
      f.mode = (e.mode ?? 0) & 0o7777;
      f.uid = e.uid ?? 0;
      f.gid = e.gid ?? 0;
      f.mtimeMs = parseModtime(e.modtime);
      f.size = e.type === "reg" ? (e.size ?? 0) : e.type === "symlink" ? Buffer.byteLength(e.linkName ?? "") : 0;
      if (e.type === "symlink") f.linkName = e.linkName ?? "";
      if (e.type === "char" || e.type === "block") {
        f.devMajor = e.devMajor ?? 0;
        f.devMinor = e.devMinor ?? 0;
      }
      if (e.digest !== undefined) f.digest = e.digest;
      if (e.xattrs !== undefined) {
        if (typeof e.xattrs !== "object" || e.xattrs === null) this.fail("ESTARGZ_BAD_ENTRY", "xattrs is not an object", e, index);
        for (const [k, v] of Object.entries(e.xattrs)) {
          if (typeof v !== "string") this.fail("ESTARGZ_BAD_ENTRY", `xattr ${k} is not base64`, e, index);
          f.xattrs[k] = Buffer.from(v, "base64");
        }
      }
      if (e.type === "dir") {
        node.children ??= new Map();
        f.nlink = 2;
      }
      if (e.type === "reg") {
        node.raw = [{ e, index }];
        regs.set(path, node);
      }
      if (!existing) {
        this.byPath.set(path, node);
        this.parentOf(path, e, index).children!.set(path.slice(path.lastIndexOf("/") + 1), node);
      }
    });

    const linkTargets = new Map(hardlinks.map((h) => [h.path, h.target]));
    for (const h of hardlinks) {
      const seen = new Set<string>([h.path]);
      let target = h.target;
      // Follow hardlink→hardlink chains (some writers emit them) and refuse loops.
      for (;;) {
        if (seen.has(target)) this.fail("ESTARGZ_HARDLINK_CYCLE", `hardlinks form a cycle through ${JSON.stringify(target)}`, h.e, h.index);
        seen.add(target);
        const next = linkTargets.get(target);
        if (next === undefined) break;
        target = next;
      }
      const node = this.byPath.get(target);
      if (!node || !node.explicit) this.fail("ESTARGZ_BAD_HARDLINK", `hardlink target ${JSON.stringify(h.target)} does not exist`, h.e, h.index);
      if (node.file.type === "dir") this.fail("ESTARGZ_BAD_HARDLINK", "hardlink to a directory", h.e, h.index);
      if (this.byPath.has(h.path)) this.fail("ESTARGZ_DUPLICATE_ENTRY", "appears twice", h.e, h.index);
      this.byPath.set(h.path, node);
      this.parentOf(h.path, h.e, h.index).children!.set(h.path.slice(h.path.lastIndexOf("/") + 1), node);
      node.file.nlink++;
    }

    for (const node of this.byPath.values()) {
      if (node.file.type === "dir" && node.file.path !== "" && this.byPath.get(node.file.path) === node) {
        const parentPath = node.file.path.includes("/") ? node.file.path.slice(0, node.file.path.lastIndexOf("/")) : "";
        this.byPath.get(parentPath)!.file.nlink++;
      }
    }

    offsets = [...new Set(offsets)].sort((a, b) => a - b);
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

    for (const node of regs.values()) {
      const f = node.file;
      const raw = node.raw!.sort((a, b) => (a.e.chunkOffset ?? 0) - (b.e.chunkOffset ?? 0));
      node.raw = undefined;
      if (f.size === 0) continue;
      let expected = 0;
      raw.forEach(({ e, index }, i) => {
        const chunkOffset = e.chunkOffset ?? 0;
        if (chunkOffset !== expected) this.fail("ESTARGZ_BAD_SIZE", `chunk at ${chunkOffset} does not follow the previous one (expected ${expected})`, e, index);
        if (e.offset === undefined) this.fail("ESTARGZ_BAD_OFFSET", "has data but no offset", e, index);
        const next = raw[i + 1];
        // containerd leaves chunkSize out on the last chunk and on single-chunk files: derive it
        const derived = next ? (next.e.chunkOffset ?? 0) - chunkOffset : f.size - chunkOffset;
        const size = e.chunkSize && e.chunkSize > 0 ? e.chunkSize : derived;
        // a derived last chunk larger than the file's own chunk size means `size` lies
        const firstSize = raw[0]!.e.chunkSize;
        const tooBig = !e.chunkSize && i > 0 && firstSize !== undefined && size > firstSize;
        if (size !== derived || size <= 0 || tooBig) {
          this.fail("ESTARGZ_BAD_SIZE", `chunk size ${size} at ${chunkOffset} does not match the file size ${f.size}`, e, index);
        }
        const ref: ChunkRef = {
          path: f.path,
          fileOffset: chunkOffset,
          size,
          compressedOffset: e.offset,
          compressedEnd: endOf(e.offset),
          innerOffset: e.innerOffset ?? 0,
        };
        if (e.chunkDigest !== undefined) ref.chunkDigest = e.chunkDigest;
        node.chunks.push(ref);
        this.ordered.push(ref);
        expected = chunkOffset + size;
      });
    }
    this.ordered.sort((a, b) => a.compressedOffset - b.compressedOffset || a.fileOffset - b.fileOffset);
  }

  private node(path: string): Node | undefined {
    const p = normalizeName(path);
    return p === undefined ? undefined : this.byPath.get(p);
  }

  lookup(path: string): FileNode | undefined {
    const p = normalizeName(path);
    const n = p === undefined ? undefined : this.byPath.get(p);
    if (!n) return undefined;
    return n.file.path === p ? n.file : { ...n.file, path: p! };
  }

  private readonly sortedNames = new WeakMap<Node, string[]>();
  readdir(path: string): string[] | undefined {
    const n = this.node(path);
    if (!n?.children || n.file.type !== "dir") return undefined;
    let names = this.sortedNames.get(n);
    if (!names) this.sortedNames.set(n, (names = [...n.children.keys()].sort()));
    return [...names];
  }

  *walk(): Iterable<FileNode> {
    const queue: Array<[string, Node]> = [["", this.root]];
    for (let i = 0; i < queue.length; i++) {
      const [path, n] = queue[i]!;
      yield n.file.path === path ? n.file : { ...n.file, path };
      if (n.children && n.file.path === path) {
        for (const name of [...n.children.keys()].sort()) queue.push([path ? `${path}/${name}` : name, n.children.get(name)!]);
      }
    }
  }

  chunksFor(path: string, offset: number, length: number): ChunkRef[] {
    const n = this.node(path);
    if (!n) throw new StargzError("ESTARGZ_NOT_FOUND", `${where(this.label)}${path}: no such file`, { label: this.label, path });
    if (n.file.type !== "reg") throw new StargzError("ESTARGZ_NOT_A_FILE", `${where(this.label)}${path}: not a regular file`, { label: this.label, path });
    const end = Math.min(n.file.size, offset + length);
    if (offset < 0 || length < 0 || offset >= end) return [];
    const chunks = n.chunks;
    let lo = 0;
    let hi = chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const c = chunks[mid]!;
      if (c.fileOffset + c.size <= offset) lo = mid + 1;
      else hi = mid;
    }
    const out: ChunkRef[] = [];
    for (let i = lo; i < chunks.length && chunks[i]!.fileOffset < end; i++) out.push(chunks[i]!);
    return out;
  }

  allChunks(): ChunkRef[] {
    return [...this.ordered];
  }

  async inflateChunk(chunk: ChunkRef, compressed: Buffer): Promise<Buffer> {
    const context = { label: this.label, path: chunk.path, fileOffset: chunk.fileOffset, compressedOffset: chunk.compressedOffset };
    const need = chunk.innerOffset + chunk.size;
    const out = await inflatePrefix(compressed, need, context);
    if (out.length < need) {
      throw new StargzError(
        "ESTARGZ_CHUNK_SIZE_MISMATCH",
        `${where(this.label)}${chunk.path}: chunk at ${chunk.fileOffset} inflates to ${Math.max(0, out.length - chunk.innerOffset)} bytes, TOC says ${chunk.size}`,
        context,
      );
    }
    const data = out.subarray(chunk.innerOffset, need);
    if (chunk.chunkDigest !== undefined) {
      const got = sha256(data);
      if (got !== chunk.chunkDigest) {
        throw new StargzError(
          "ESTARGZ_CHUNK_DIGEST_MISMATCH",
          `${where(this.label)}${chunk.path}: chunk at ${chunk.fileOffset} has digest ${got}, TOC says ${chunk.chunkDigest}`,
          { ...context, expected: chunk.chunkDigest, actual: got },
        );
      }
    }
    return data;
  }

  async readFile(path: string, offset = 0, length?: number): Promise<Buffer> {
    const n = this.node(path);
    const size = n?.file.type === "reg" ? n.file.size : 0;
    const len = length ?? Math.max(0, size - offset);
    const parts: Buffer[] = [];
    for (const c of this.chunksFor(path, offset, len)) {
      const want = c.compressedEnd - c.compressedOffset;
      const compressed = await this.range.read(c.compressedOffset, want);
      if (compressed.length !== want) {
        throw new StargzError("ESTARGZ_TRUNCATED", `${where(this.label)}blob ends inside the chunk at ${c.compressedOffset}`, {
          label: this.label,
          offset: c.compressedOffset,
        });
      }
      const data = await this.inflateChunk(c, compressed);
      const from = Math.max(0, offset - c.fileOffset);
      const to = Math.min(c.size, offset + len - c.fileOffset);
      parts.push(data.subarray(from, to));
    }
    return Buffer.concat(parts);
  }
}

/**
 * Open an eStargz or legacy stargz blob: one speculative read of the tail (footer + TOC when the TOC
 * is under 1 MiB), a second only for bigger TOCs; then parse and validate the TOC as untrusted input.
 */
export async function openStargz(range: RangeReader, opts: OpenOptions = {}): Promise<StargzReader> {
  const label = opts.label;
  const maxToc = opts.maxTocBytes ?? DEFAULT_MAX_TOC;
  const size = range.size;
  const truncated = (what: string): StargzError =>
    new StargzError("ESTARGZ_TRUNCATED", `${where(label)}${what}`, { label, size });
  if (!Number.isSafeInteger(size) || size < LEGACY_FOOTER_SIZE) throw truncated(`blob of ${size} bytes is too short for a footer`);
  const tailLen = Math.min(size, SPECULATIVE_TAIL);
  const tailStart = size - tailLen;
  const tail = await range.read(tailStart, tailLen);
  if (tail.length !== tailLen) throw truncated(`short read of the blob's tail (${tail.length} of ${tailLen} bytes)`);
  const footer = requireFooter(tail, label);
  const tocEnd = size - footer.footerSize;
  if (footer.tocOffset >= tocEnd) {
    throw new StargzError("ESTARGZ_BAD_FOOTER", `${where(label)}footer points at TOC offset ${footer.tocOffset}, past the end of the blob (${tocEnd})`, {
      label,
      tocOffset: footer.tocOffset,
      size,
    });
  }
  const compressedLen = tocEnd - footer.tocOffset;
  const tooLarge = (): StargzError =>
    new StargzError("ESTARGZ_TOC_TOO_LARGE", `${where(label)}TOC is larger than ${maxToc} bytes`, { label, maxTocBytes: maxToc });
  // Deflate never expands by more than ~0.1% + a few bytes; anything bigger is not a sane TOC member.
  if (compressedLen > maxToc + (maxToc >> 8) + 4096) throw tooLarge();
  let member: Buffer;
  if (footer.tocOffset >= tailStart) member = tail.subarray(footer.tocOffset - tailStart, tocEnd - tailStart);
  else {
    member = await range.read(footer.tocOffset, compressedLen);
    if (member.length !== compressedLen) throw truncated(`short read of the TOC (${member.length} of ${compressedLen} bytes)`);
  }
  const badToc = (what: string, cause?: unknown): StargzError =>
    new StargzError("ESTARGZ_BAD_TOC", `${where(label)}TOC ${what}`, { label, tocOffset: footer.tocOffset }, { cause });
  const tarBytes = await inflateBounded(member, maxToc + 64 * 1024, tooLarge, (e) => badToc(`does not inflate: ${e.message}`, e));
  let json: Buffer | undefined;
  try {
    for await (const entry of readTar(new StreamByteSource([tarBytes][Symbol.iterator]() as unknown as AsyncIterator<Buffer>))) {
      if (normalizeName(entry.header.name) !== TOC_TAR_NAME) throw badToc(`member holds ${JSON.stringify(entry.header.name)}, not ${TOC_TAR_NAME}`);
      if (entry.header.size > maxToc) throw tooLarge();
      json = await entry.read(entry.header.size);
      break;
    }
  } catch (err) {
    if (err instanceof StargzError && err.code.startsWith("ESTARGZ_")) throw err;
    throw badToc(`is not a valid tar: ${(err as Error).message}`, err);
  }
  if (!json) throw badToc("member is empty");
  const tocDigest = sha256(json);
  if (opts.expectedTocDigest !== undefined && opts.expectedTocDigest !== tocDigest) {
    throw new StargzError("ESTARGZ_TOC_DIGEST_MISMATCH", `${where(label)}TOC digest is ${tocDigest}, expected ${opts.expectedTocDigest}`, {
      label,
      expected: opts.expectedTocDigest,
      actual: tocDigest,
    });
  }
  let toc: Toc;
  try {
    toc = JSON.parse(json.toString("utf8")) as Toc;
  } catch (err) {
    throw badToc(`is not JSON: ${(err as Error).message}`, err);
  }
  if (typeof toc !== "object" || toc === null || typeof toc.version !== "number" || !Array.isArray(toc.entries)) {
    throw badToc("has no version or entries");
  }
  return new Reader(toc, tocDigest, footer.format, footer.tocOffset, range, label);
}
