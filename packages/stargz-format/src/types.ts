/**
 * The public contract of @lazypull/stargz-format. Other packages (fuse-fs, the CLI) code against these
 * types; implementations may add members but must not change these without updating every user.
 */
import type { TocLocation } from "./annotations.js";

/** Where the reader's bytes come from: a local file, an HTTP range, a cache. The format does no I/O itself. */
export interface RangeReader {
  /** Total blob size in bytes. */
  readonly size: number;
  /** Exactly `length` bytes at `offset` (fewer only past the end, which callers treat as truncation). */
  read(offset: number, length: number): Promise<Buffer>;
}

export type EntryType = "dir" | "reg" | "symlink" | "hardlink" | "char" | "block" | "fifo" | "chunk";

/** One TOC entry, exactly as in `stargz.index.json` (optional keys omitted when absent). */
export interface TocEntry {
  name: string;
  type: EntryType;
  size?: number;
  modtime?: string;
  linkName?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  userName?: string;
  groupName?: string;
  offset?: number;
  chunkOffset?: number;
  chunkSize?: number;
  chunkDigest?: string;
  innerOffset?: number;
  devMajor?: number;
  devMinor?: number;
  /** values are base64 */
  xattrs?: Record<string, string>;
  digest?: string;
}

export interface Toc {
  version: number;
  entries: TocEntry[];
}

/** A file (or dir, link, device…) of a layer, with its path normalised: no leading `./` or `/`, no trailing `/`; root is "". */
export interface FileNode {
  path: string;
  type: Exclude<EntryType, "chunk" | "hardlink">;
  /** permission and special bits (setuid/setgid/sticky), without the file-type bits */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** ms since epoch */
  mtimeMs: number;
  linkName?: string;
  devMajor?: number;
  devMinor?: number;
  /** decoded xattrs */
  xattrs: Record<string, Buffer>;
  /** number of names that refer to this node (hardlinks share one node) */
  nlink: number;
  /** stable per-layer inode number */
  ino: number;
  /** sha256 of the whole content ("sha256:…"), when the TOC gives it */
  digest?: string;
}

/** One chunk of a regular file: where it lives in the file and in the compressed blob. */
export interface ChunkRef {
  /** normalised path of the file that owns the data (a hardlink resolves to its target) */
  path: string;
  /** offset of this chunk in the uncompressed file */
  fileOffset: number;
  /** uncompressed length */
  size: number;
  /** start of the gzip member in the blob */
  compressedOffset: number;
  /** end (exclusive) of the gzip member: the next member's offset, or the TOC's */
  compressedEnd: number;
  /** bytes to skip after inflating the member (eStargz v0.13+ `innerOffset`; usually 0) */
  innerOffset: number;
  /** "sha256:…" of the uncompressed chunk; undefined only for legacy stargz without digests */
  chunkDigest?: string;
}

export interface OpenOptions {
  /** "sha256:…" the TOC JSON must hash to (the manifest's `containerd.io/snapshot/stargz/toc.digest`). */
  expectedTocDigest?: string;
  /** Name used in error messages (e.g. the layer digest). */
  label?: string;
  /** Refuse TOCs larger than this (uncompressed bytes). Default 64 MiB. */
  maxTocBytes?: number;
  /**
   * Where the TOC member is, when the layer's descriptor says so (`tocLocationFromAnnotations`): the open then
   * reads exactly `[offset, size)` in one read instead of guessing the last 1 MiB. A hint only: the footer
   * still says where the TOC is (a location that does not match it costs at most one more read, never wrong
   * bytes) and the TOC is still checked against `expectedTocDigest`. One that is impossible for the blob is
   * refused with `ESTARGZ_BAD_TOC_LOCATION`.
   */
  tocLocation?: TocLocation;
  /**
   * `readFile` refuses (`ESTARGZ_CHUNK_TOO_LARGE`) a chunk whose inflated size or compressed span is
   * larger than this: it inflates each chunk whole in memory. Default 64 MiB (`DEFAULT_MAX_CHUNK_BYTES`).
   * fuse-fs streams such chunks instead.
   */
  maxChunkBytes?: number;
}

/** An opened eStargz or legacy stargz blob: everything answered from the TOC, data through chunk refs. */
export interface StargzReader {
  /**
   * The TOC exactly as stored (`stargz.index.json`), decoded again from the compressed TOC member the
   * reader keeps: the reader does not hold the parsed TOC (tens of MB of objects for big layers).
   * Each call inflates and parses anew; callers that need it often should keep the result.
   */
  readToc(): Promise<Toc>;
  /** sha256 of the TOC JSON bytes */
  readonly tocDigest: string;
  readonly format: "estargz" | "stargz";
  /** offset of the TOC's gzip member in the blob */
  readonly tocOffset: number;
  /** end of the prefetch range: offset of `.prefetch.landmark`, or 0 when the blob has no prioritised files */
  readonly prefetchEnd: number;
  lookup(path: string): FileNode | undefined;
  /** names (not paths) of a directory's children, sorted */
  readdir(path: string): string[] | undefined;
  /** every node, parents before children */
  walk(): Iterable<FileNode>;
  /** how many nodes `walk` yields (every path: the root, implicit directories, each hardlink name), without walking */
  readonly nodeCount: number;
  /** the chunks covering [offset, offset+length) of a regular file, in order */
  chunksFor(path: string, offset: number, length: number): ChunkRef[];
  /** every chunk of the blob, in blob order */
  allChunks(): ChunkRef[];
  /** inflate one chunk's compressed member bytes ([compressedOffset, compressedEnd)) and verify its digest */
  inflateChunk(chunk: ChunkRef, compressed: Buffer): Promise<Buffer>;
  /** read a file range through the RangeReader given at open (convenience for CLIs; no caching) */
  readFile(path: string, offset?: number, length?: number): Promise<Buffer>;
}

export interface ConvertOptions {
  /** chunk size for large files, default 4 MiB */
  chunkSize?: number;
  /** gzip level, default 9 (eStargz convention) */
  level?: number;
  /** files to put first (before `.prefetch.landmark`) in this order; paths as in the tar, `./` optional */
  prioritizedFiles?: string[];
  /** worker threads for compression, default: number of CPUs */
  concurrency?: number;
  /** temp directory for spooling (reordering) */
  tmpDir?: string;
  /** called with uncompressed input bytes consumed so far */
  onProgress?: (inputBytes: number) => void;
}

export interface ConvertResult {
  /** "sha256:…" of the TOC JSON, for the `containerd.io/snapshot/stargz/toc.digest` annotation */
  tocDigest: string;
  /** "sha256:…" of the uncompressed output tar (the config's rootfs.diff_ids entry) */
  diffId: string;
  /** bytes of the uncompressed output tar (the `io.containers.estargz.uncompressed-size` annotation) */
  uncompressedSize: number;
  /** "sha256:…" of the blob */
  blobDigest: string;
  blobSize: number;
}
