import type { CacheKey, ChunkCache } from "@lazypull/blob-cache";
import type { BlobSource, ImageReference } from "@lazypull/registry-client";
import { isPaxSparse, readTar, StreamByteSource, type FileNode, type TarEntry, type TarEntryType, type TarHeader, type UnsupportedTarEntry } from "@lazypull/stargz-format";
import type { Logger } from "pino";
import { FuseFsError } from "../errors.js";
import type { LayerProgress, LayerState } from "../types.js";
import type { FetchCounters } from "./counters.js";
import { decompressLayer } from "./decompress.js";
import { normalisePath, type ServedLayer } from "./layer.js";
import { MemoryTree } from "./memory-tree.js";
import { withRetries, type RetryPolicy } from "./retry.js";

/** File content is cached in segments of this size, so no read loads a big file whole. */
export const SEGMENT_BYTES = 4 * 1024 * 1024;
/** v1 indexes (tar-stream) hold binary xattrs mangled through UTF-8: never replay them. */
const INDEX_ID = "whole:index:v2";

type NodeInit = Omit<FileNode, "path" | "ino" | "nlink">;
/** How the tree was built, replayable from the cache on the next mount. */
type IndexOp =
  | { op: "add"; path: string; node: Omit<NodeInit, "xattrs"> & { xattrs: Record<string, string> } }
  | { op: "link"; path: string; target: string };

export interface WholeLayerOptions {
  ref: ImageReference;
  digest: string;
  blobSize: number;
  source: BlobSource;
  cache: ChunkCache;
  counters: FetchCounters;
  log: Logger;
  retry: RetryPolicy;
  abort: AbortController;
  /** told as the layer's bytes arrive */
  onState?: (state: LayerState) => void;
}

const segmentKey = (digest: string, owner: string, start: number): CacheKey => ({ blob: digest, id: `file:${owner}@${start}` });

function fromTarHeader(h: TarHeader, type: Exclude<TarEntryType, "hardlink">): NodeInit {
  const xattrs: Record<string, Buffer> = { ...h.xattrs };
  for (const [k, v] of Object.entries(h.pax)) {
    if (k.startsWith("LIBARCHIVE.xattr.")) xattrs[decodeURIComponent(k.slice(17))] = Buffer.from(v, "base64");
  }
  const base = { mode: h.mode, uid: h.uid, gid: h.gid, size: 0, mtimeMs: h.mtime * 1000, xattrs };
  switch (type) {
    case "reg":
      // a pre-POSIX tar marks a directory only by the trailing slash (tar-stream and Go's archive/tar agree)
      if (h.name.endsWith("/")) return { ...base, type: "dir" };
      return { ...base, type: "reg", size: h.size };
    case "dir":
      return { ...base, type: "dir" };
    case "symlink":
      return { ...base, type: "symlink", linkName: h.linkName };
    case "char":
    case "block":
      return { ...base, type, devMajor: h.devMajor, devMinor: h.devMinor };
    case "fifo":
      return { ...base, type: "fifo" };
  }
}

const UNSUPPORTED_TYPES: Record<string, string> = {
  S: "a GNU sparse file",
  D: "a GNU incremental dumpdir",
  M: "a GNU multi-volume continuation",
  N: "a GNU rename record",
};

/**
 * Entry types the tar reader does not know. A volume label ('V') is no file, so it is skipped; anything
 * else (sparse files, dumpdirs, vendor types) is refused with a clear error, as containers-storage
 * refuses ("unhandled tar header type"), rather than served as a missing or wrong file.
 */
function unsupportedEntry(digest: string, log: Logger) {
  return (u: UnsupportedTarEntry): void => {
    if (u.typeflag === "V") {
      log.warn({ digest, label: u.name }, "skipping a tar volume label in a layer");
      return;
    }
    const what = UNSUPPORTED_TYPES[u.typeflag] ?? "an unknown kind of entry";
    throw new FuseFsError(
      "FUSEFS_BAD_LAYER",
      `layer ${digest} holds ${u.name}, ${what} (tar type '${u.typeflag}'), which lazypull cannot serve`,
      { digest, path: u.name, typeflag: u.typeflag, offset: u.headerOffset },
    );
  };
}

function replay(tree: MemoryTree, ops: IndexOp[]): void {
  for (const o of ops) {
    if (o.op === "link") tree.link(o.path, o.target);
    else {
      const xattrs = Object.fromEntries(Object.entries(o.node.xattrs).map(([k, v]) => [k, Buffer.from(v, "base64")]));
      tree.add(o.path, { ...o.node, xattrs });
    }
  }
}

/**
 * A layer that is not eStargz (plain gzip, zstd or uncompressed tar): fetched whole once (digest checked
 * by the source), indexed, its files stored in the blob-cache in segments, then served from there.
 */
export class WholeLayer implements ServedLayer {
  readonly digest: string;
  readonly kind = "whole" as const;
  private state: LayerState = "fetching";
  private tree: MemoryTree;

  private constructor(private readonly o: WholeLayerOptions) {
    this.digest = o.digest;
    this.tree = new MemoryTree(o.digest);
  }

  /** Loads the layer: from a previous run's cached index when every segment is still there, else from the registry. */
  static async load(o: WholeLayerOptions): Promise<WholeLayer> {
    const layer = new WholeLayer(o);
    o.cache.pin(o.digest);
    try {
      if (!(await layer.loadFromCache())) {
        await withRetries({ digest: o.digest, offset: 0, length: o.blobSize }, o.retry, { ...o, signal: o.abort.signal }, () =>
          layer.fetchAndIndex(),
        );
      }
    } catch (err) {
      o.cache.unpin(o.digest);
      throw err;
    }
    layer.state = "complete";
    o.onState?.("complete");
    return layer;
  }

  private async loadFromCache(): Promise<boolean> {
    const raw = await this.o.cache.get({ blob: this.digest, id: INDEX_ID }).catch(() => undefined);
    if (!raw) return false;
    try {
      const tree = new MemoryTree(this.digest);
      replay(tree, JSON.parse(raw.toString("utf8")) as IndexOp[]);
      const keys: CacheKey[] = [];
      for (const n of tree.walk()) {
        if (n.type !== "reg" || tree.owner(n.path) !== n.path) continue;
        for (let s = 0; s < n.size; s += SEGMENT_BYTES) keys.push(segmentKey(this.digest, n.path, s));
      }
      for (let i = 0; i < keys.length; i += 256) {
        const present = await Promise.all(keys.slice(i, i + 256).map((k) => this.o.cache.has(k)));
        if (present.includes(false)) return false;
      }
      this.tree = tree;
      return true;
    } catch (err) {
      this.o.log.warn({ err, digest: this.digest }, "cached layer index unusable; fetching the layer again");
      return false;
    }
  }

  private async fetchAndIndex(): Promise<void> {
    const { o } = this;
    const tree = new MemoryTree(this.digest);
    const ops: IndexOp[] = [];
    const blob = await o.source.fetchBlob(o.ref, this.digest, o.abort.signal);
    const counters = o.counters;
    counters.noteRequest(0);
    const counted = (async function* () {
      for await (const b of blob as AsyncIterable<Buffer>) {
        counters.bytesFetched += b.length;
        yield b;
      }
    })();
    const { tar, inputDone } = await decompressLayer(counted as unknown as NodeJS.ReadableStream, this.digest);
    const chunks = tar[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    let finished = false;
    try {
      for await (const entry of readTar(new StreamByteSource(chunks), { onUnsupported: unsupportedEntry(this.digest, o.log) })) {
        const h = entry.header;
        const path = normalisePath(h.name);
        if (h.type === "hardlink") {
          tree.link(path, h.linkName);
          ops.push({ op: "link", path, target: normalisePath(h.linkName) });
          continue;
        }
        if (isPaxSparse(h)) {
          throw new FuseFsError("FUSEFS_BAD_LAYER", `layer ${this.digest} holds ${h.name}, a PAX sparse file, which lazypull cannot serve`, {
            digest: this.digest,
            path: h.name,
            offset: entry.headerOffset,
          });
        }
        const node = fromTarHeader(h, h.type);
        tree.add(path, node);
        const { xattrs, ...rest } = node;
        ops.push({ op: "add", path, node: { ...rest, xattrs: Object.fromEntries(Object.entries(xattrs).map(([k, v]) => [k, v.toString("base64")])) } });
        if (node.type === "reg") await this.storeContent(path, entry);
      }
      // the tar may go on after its end blocks (record padding): the source checks the digest only at the end
      while (!(await chunks.next()).done);
      finished = true;
    } finally {
      if (!finished) tar.destroy();
    }
    await inputDone;
    await o.cache.put({ blob: this.digest, id: INDEX_ID }, Buffer.from(JSON.stringify(ops)));
    this.tree = tree;
  }

  /** Copies a file's data to the cache in SEGMENT_BYTES pieces, never holding more than one. */
  private async storeContent(path: string, entry: TarEntry): Promise<void> {
    for (let start = 0; start < entry.header.size; ) {
      const seg = await entry.read(SEGMENT_BYTES);
      await this.o.cache.put(segmentKey(this.digest, path, start), seg);
      start += seg.length;
    }
  }

  lookup(path: string): FileNode | undefined {
    return this.tree.lookup(path);
  }

  readdir(path: string): string[] | undefined {
    return this.tree.readdir(path);
  }

  walk(): Iterable<FileNode> {
    return this.tree.walk();
  }

  get nodeCount(): number {
    return this.tree.size;
  }

  async read(path: string, offset: number, length: number): Promise<Buffer> {
    const p = normalisePath(path);
    const node = this.tree.lookup(p);
    if (!node) throw new FuseFsError("FUSEFS_NOT_FOUND", `no ${p} in layer ${this.digest}`, { digest: this.digest, path: p });
    if (node.type === "dir") throw new FuseFsError("FUSEFS_IS_DIR", `${p} is a directory`, { digest: this.digest, path: p });
    if (node.type !== "reg" || offset >= node.size || length <= 0) return Buffer.alloc(0);
    const end = Math.min(node.size, offset + length);
    const owner = this.tree.owner(p);
    const parts: Promise<Buffer | undefined>[] = [];
    for (let s = Math.floor(offset / SEGMENT_BYTES) * SEGMENT_BYTES; s < end; s += SEGMENT_BYTES) {
      const from = Math.max(offset, s) - s;
      const to = Math.min(end, s + SEGMENT_BYTES) - s;
      parts.push(this.o.cache.read(segmentKey(this.digest, owner, s), from, to - from));
    }
    const got = await Promise.all(parts);
    if (got.some((b) => b === undefined)) {
      throw new FuseFsError("FUSEFS_FETCH_FAILED", `cached content of ${p} in layer ${this.digest} is gone`, {
        digest: this.digest,
        path: p,
        offset,
      });
    }
    const out = got.length === 1 ? got[0]! : Buffer.concat(got as Buffer[]);
    if (out.length !== end - offset) {
      throw new FuseFsError("FUSEFS_FETCH_FAILED", `cached content of ${p} is short`, { digest: this.digest, path: p, offset });
    }
    return out;
  }

  /** the whole blob is already on its way (or here): nothing to fetch file by file */
  prefetchFiles(): Promise<void> {
    return Promise.resolve();
  }

  /** its segments are written before it is served */
  flush(): Promise<void> {
    return Promise.resolve();
  }

  startBackground(): void {
    // everything is local once loaded
  }

  progress(): Omit<LayerProgress, "dir" | "overlayDir"> {
    return this.o.counters.progress({ digest: this.digest, state: this.state, kind: "whole", bytesTotal: this.o.blobSize });
  }

  close(): void {
    this.o.abort.abort();
    this.o.cache.unpin(this.digest);
  }
}
