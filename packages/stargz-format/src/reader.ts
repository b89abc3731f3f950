import { checkTocLocation, maxTocMemberBytes, type TocLocation } from "./annotations.js";
import { StreamByteSource } from "./byte-source.js";
import { StargzError, where } from "./errors.js";
import { requireFooter, LEGACY_FOOTER_SIZE } from "./footer.js";
import { inflateBounded } from "./inflate.js";
import { inflateVerified } from "./inflate-verified.js";
import { readTar } from "./tar/reader.js";
import { normalizeName, normalizeQuery, sha256, TOC_TAR_NAME } from "./toc.js";
import { buildTreeYielding, type Tree, type TreeNode } from "./tree.js";
import type { ChunkRef, FileNode, OpenOptions, RangeReader, StargzReader, Toc } from "./types.js";

const DEFAULT_MAX_TOC = 64 << 20;
/** see `OpenOptions.maxChunkBytes` */
export const DEFAULT_MAX_CHUNK_BYTES = 64 << 20;
/** Read this much of the tail at once: the footer and, for TOCs under 1 MiB, the whole TOC member. */
export const SPECULATIVE_TAIL = (1 << 20) + 51;

/** Where the TOC member is and how far it may inflate; enough to decode it again later (`readToc`). */
interface TocPlace {
  label: string | undefined;
  tocOffset: number;
  maxToc: number;
  maxChunk: number;
}

class Reader implements StargzReader {
  private readonly byPath: Map<string, TreeNode>;
  private readonly root: TreeNode;
  private readonly ordered: ChunkRef[];
  readonly prefetchEnd: number;
  readonly tocOffset: number;
  private readonly label: string | undefined;

  constructor(
    tree: Tree,
    /** the compressed TOC member (its own copy): a few hundred KB, where the parsed TOC is tens of MB of objects */
    private readonly tocMember: Buffer,
    private readonly place: TocPlace,
    readonly tocDigest: string,
    readonly format: "estargz" | "stargz",
    private readonly range: RangeReader,
  ) {
    this.byPath = tree.byPath;
    this.root = tree.root;
    this.ordered = tree.ordered;
    this.prefetchEnd = tree.prefetchEnd;
    this.tocOffset = place.tocOffset;
    this.label = place.label;
  }

  get nodeCount(): number {
    return this.byPath.size;
  }

  async readToc(): Promise<Toc> {
    return (await decodeToc(this.tocMember, this.place)).toc;
  }

  private node(path: string): TreeNode | undefined {
    const p = normalizeQuery(path);
    return p === undefined ? undefined : this.byPath.get(p);
  }

  lookup(path: string): FileNode | undefined {
    const p = normalizeQuery(path);
    const n = p === undefined ? undefined : this.byPath.get(p);
    if (!n) return undefined;
    // a hardlink name shares its target's node: answer with its own path
    return n.path === p ? n : { ...n, path: p! };
  }

  readdir(path: string): string[] | undefined {
    const names = this.node(path)?.names;
    return names ? [...names] : undefined;
  }

  *walk(): Iterable<FileNode> {
    const queue: Array<[string, TreeNode]> = [["", this.root]];
    for (let i = 0; i < queue.length; i++) {
      const [path, n] = queue[i]!;
      yield n.path === path ? n : { ...n, path };
      if (n.names && n.path === path) {
        for (const name of n.names) {
          const child = path ? `${path}/${name}` : name;
          queue.push([child, this.byPath.get(child)!]);
        }
      }
    }
  }

  chunksFor(path: string, offset: number, length: number): ChunkRef[] {
    const n = this.node(path);
    if (!n) throw new StargzError("ESTARGZ_NOT_FOUND", `${where(this.label)}${path}: no such file`, { label: this.label, path });
    if (n.type !== "reg") throw new StargzError("ESTARGZ_NOT_A_FILE", `${where(this.label)}${path}: not a regular file`, { label: this.label, path });
    const end = Math.min(n.size, offset + length);
    if (offset < 0 || length < 0 || offset >= end) return [];
    const chunks = n.chunks;
    if (chunks === undefined) return [];
    // a single chunk covers the whole file, and [offset, end) is inside the file
    if (!Array.isArray(chunks)) return [chunks];
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

  /** Inflates and verifies a chunk off the main thread where it is big enough to matter (see inflate-verified.ts). */
  inflateChunk(chunk: ChunkRef, compressed: Buffer): Promise<Buffer> {
    return inflateVerified(chunk, compressed, this.label);
  }

  async readFile(path: string, offset = 0, length?: number): Promise<Buffer> {
    const n = this.node(path);
    const size = n?.type === "reg" ? n.size : 0;
    const len = length ?? Math.max(0, size - offset);
    const parts: Buffer[] = [];
    for (const c of this.chunksFor(path, offset, len)) {
      const want = c.compressedEnd - c.compressedOffset;
      if (Math.max(want, c.innerOffset + c.size) > this.place.maxChunk) {
        throw new StargzError(
          "ESTARGZ_CHUNK_TOO_LARGE",
          `${where(this.label)}${c.path}: chunk at ${c.fileOffset} is ${c.size} bytes (${want} compressed), over the ${this.place.maxChunk}-byte limit for reading a chunk whole`,
          { label: this.label, path: c.path, fileOffset: c.fileOffset, size: c.size, compressedSize: want, maxChunkBytes: this.place.maxChunk },
        );
      }
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
 * Open an eStargz or legacy stargz blob: one read of the tail — exactly TOC + footer when `tocLocation`
 * says where they are, else a speculative 1 MiB that holds them when the TOC is under 1 MiB — a second
 * only when the TOC did not fit; then parse and validate the TOC as untrusted input.
 */
export async function openStargz(range: RangeReader, opts: OpenOptions = {}): Promise<StargzReader> {
  const { label } = opts;
  const maxToc = opts.maxTocBytes ?? DEFAULT_MAX_TOC;
  const { member, format, tocOffset } = await readTocMember(range, label, maxToc, opts.tocLocation);
  const place: TocPlace = { label, tocOffset, maxToc, maxChunk: opts.maxChunkBytes ?? DEFAULT_MAX_CHUNK_BYTES };
  const { toc, tocDigest } = await decodeToc(member, place, opts.expectedTocDigest);
  // the entries are consumed as the tree grows: only the tree and the compressed member stay; in
  // stretches, as a big TOC's build would otherwise hold up the caller's FUSE operations for all of it
  return new Reader(await buildTreeYielding(toc.entries, place.tocOffset, place.label), member, place, tocDigest, format, range);
}

/** Find the footer and fetch the TOC's gzip member: our own copy of it, so the tail read can go. */
async function readTocMember(
  range: RangeReader,
  label: string | undefined,
  maxToc: number,
  location: TocLocation | undefined,
): Promise<{ member: Buffer; format: "estargz" | "stargz"; tocOffset: number }> {
  const size = range.size;
  const truncated = (what: string): StargzError =>
    new StargzError("ESTARGZ_TRUNCATED", `${where(label)}${what}`, { label, size });
  if (!Number.isSafeInteger(size) || size < LEGACY_FOOTER_SIZE) throw truncated(`blob of ${size} bytes is too short for a footer`);
  const tailLen = location ? size - checkTocLocation(location, size, { maxTocBytes: maxToc, label }).offset : Math.min(size, SPECULATIVE_TAIL);
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
  const { tocOffset, format } = footer;
  const compressedLen = tocEnd - footer.tocOffset;
  // Deflate never expands by more than ~0.1% + a few bytes; anything bigger is not a sane TOC member.
  if (compressedLen > maxTocMemberBytes(maxToc)) throw tooLarge(label, maxToc);
  if (tocOffset >= tailStart) return { member: Buffer.from(tail.subarray(tocOffset - tailStart, tocEnd - tailStart)), format, tocOffset };
  const member = await range.read(footer.tocOffset, compressedLen);
  if (member.length !== compressedLen) throw truncated(`short read of the TOC (${member.length} of ${compressedLen} bytes)`);
  // the range reader may hand out a view of something bigger (a cached blob): keep only our bytes
  return { member: member.byteOffset === 0 && member.buffer.byteLength === member.length ? member : Buffer.from(member), format, tocOffset };
}

function tooLarge(label: string | undefined, maxToc: number): StargzError {
  return new StargzError("ESTARGZ_TOC_TOO_LARGE", `${where(label)}TOC is larger than ${maxToc} bytes`, { label, maxTocBytes: maxToc });
}

type BadToc = (what: string, cause?: unknown) => StargzError;

/**
 * Inflate the TOC member, take `stargz.index.json` out of its tar, hash and parse it. The inflated bytes
 * are dropped before JSON.parse starts, so its first scavenges can free them.
 */
async function decodeToc(member: Buffer, place: TocPlace, expectedTocDigest?: string): Promise<{ toc: Toc; tocDigest: string }> {
  const { label } = place;
  const badToc: BadToc = (what, cause) => new StargzError("ESTARGZ_BAD_TOC", `${where(label)}TOC ${what}`, { label, tocOffset: place.tocOffset }, { cause });
  let json: Buffer | undefined = await tocJson(member, place, badToc);
  const tocDigest = sha256(json);
  if (expectedTocDigest !== undefined && expectedTocDigest !== tocDigest) {
    throw new StargzError("ESTARGZ_TOC_DIGEST_MISMATCH", `${where(label)}TOC digest is ${tocDigest}, expected ${expectedTocDigest}`, {
      label,
      expected: expectedTocDigest,
      actual: tocDigest,
    });
  }
  const text = json.toString("utf8");
  json = undefined; // the inflated bytes can go while JSON.parse builds the objects
  let toc: Toc;
  try {
    toc = JSON.parse(text) as Toc;
  } catch (err) {
    throw badToc(`is not JSON: ${(err as Error).message}`, err);
  }
  if (typeof toc !== "object" || toc === null || typeof toc.version !== "number" || !Array.isArray(toc.entries)) {
    throw badToc("has no version or entries");
  }
  return { toc, tocDigest };
}

/** The bytes of `stargz.index.json` from the TOC member (a view of the inflated tar). Its own function: no iterator or tar reader of it outlives the call. */
async function tocJson(member: Buffer, place: TocPlace, badToc: BadToc): Promise<Buffer> {
  const { label, maxToc } = place;
  const tarBytes = await inflateBounded(member, maxToc + 64 * 1024, () => tooLarge(label, maxToc), (e) => badToc(`does not inflate: ${e.message}`, e));
  try {
    for await (const entry of readTar(new StreamByteSource([tarBytes][Symbol.iterator]() as unknown as AsyncIterator<Buffer>))) {
      if (normalizeName(entry.header.name) !== TOC_TAR_NAME) throw badToc(`member holds ${JSON.stringify(entry.header.name)}, not ${TOC_TAR_NAME}`);
      if (entry.header.size > maxToc) throw tooLarge(label, maxToc);
      return await entry.read(entry.header.size);
    }
  } catch (err) {
    if (err instanceof StargzError && err.code.startsWith("ESTARGZ_")) throw err;
    throw badToc(`is not a valid tar: ${(err as Error).message}`, err);
  }
  throw badToc("member is empty");
}
