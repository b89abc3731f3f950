import type { CacheKey, ChunkCache } from "@lazypull/blob-cache";
import type { BlobSource, ImageReference } from "@lazypull/registry-client";
import type { FileNode } from "@lazypull/stargz-format";
import type { Logger } from "pino";
import tarStream from "tar-stream";
import { FuseFsError } from "../errors.js";
import type { LayerProgress, LayerState } from "../types.js";
import type { FetchCounters } from "./counters.js";
import { decompressLayer } from "./decompress.js";
import { normalisePath, type ServedLayer } from "./layer.js";
import { MemoryTree } from "./memory-tree.js";
import { withRetries, type RetryPolicy } from "./retry.js";

/** File content is cached in segments of this size, so no read loads a big file whole. */
export const SEGMENT_BYTES = 4 * 1024 * 1024;
const INDEX_ID = "whole:index:v1";

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

function fromTarHeader(h: tarStream.Headers, pax: Record<string, string>): NodeInit | undefined {
  const xattrs: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries(pax)) {
    if (k.startsWith("SCHILY.xattr.")) xattrs[k.slice(13)] = Buffer.from(v, "utf8");
    else if (k.startsWith("LIBARCHIVE.xattr.")) xattrs[decodeURIComponent(k.slice(17))] = Buffer.from(v, "base64");
  }
  const base = {
    mode: (h.mode ?? 0) & 0o7777,
    uid: h.uid ?? 0,
    gid: h.gid ?? 0,
    size: 0,
    mtimeMs: h.mtime ? h.mtime.getTime() : 0,
    xattrs,
  };
  switch (h.type) {
    case "file":
    case "contiguous-file":
      return { ...base, type: "reg", size: h.size ?? 0 };
    case "directory":
      return { ...base, type: "dir" };
    case "symlink":
      return { ...base, type: "symlink", linkName: h.linkname ?? "" };
    case "character-device":
      return { ...base, type: "char", devMajor: h.devmajor ?? 0, devMinor: h.devminor ?? 0 };
    case "block-device":
      return { ...base, type: "block", devMajor: h.devmajor ?? 0, devMinor: h.devminor ?? 0 };
    case "fifo":
      return { ...base, type: "fifo" };
    default:
      return undefined;
  }
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
    const extract = tarStream.extract();
    tar.on("error", (err) => extract.destroy(err));
    tar.pipe(extract);
    for await (const entry of extract) {
      const h = entry.header;
      const pax = (h as { pax?: Record<string, string> }).pax ?? {};
      const path = normalisePath(h.name);
      if (h.type === "link") {
        tree.link(path, h.linkname ?? "");
        ops.push({ op: "link", path: normalisePath(path), target: normalisePath(h.linkname ?? "") });
        entry.resume();
        continue;
      }
      const node = fromTarHeader(h, pax);
      if (!node) {
        entry.resume();
        continue;
      }
      tree.add(path, node);
      const { xattrs, ...rest } = node;
      ops.push({ op: "add", path, node: { ...rest, xattrs: Object.fromEntries(Object.entries(xattrs).map(([k, v]) => [k, v.toString("base64")])) } });
      if (node.type === "reg") await this.storeContent(normalisePath(path), entry);
      else entry.resume();
    }
    await inputDone;
    await o.cache.put({ blob: this.digest, id: INDEX_ID }, Buffer.from(JSON.stringify(ops)));
    this.tree = tree;
  }

  private async storeContent(path: string, entry: AsyncIterable<Buffer>): Promise<void> {
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let start = 0;
    const flush = async () => {
      const seg = Buffer.concat(pending, pendingBytes);
      await this.o.cache.put(segmentKey(this.digest, path, start), seg);
      start += seg.length;
      pending = [];
      pendingBytes = 0;
    };
    for await (const b of entry) {
      let buf = b;
      while (buf.length > 0) {
        const take = Math.min(buf.length, SEGMENT_BYTES - pendingBytes);
        pending.push(buf.subarray(0, take));
        pendingBytes += take;
        buf = buf.subarray(take);
        if (pendingBytes === SEGMENT_BYTES) await flush();
      }
    }
    if (pendingBytes > 0) await flush();
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

  startBackground(): void {
    // everything is local once loaded
  }

  progress(): Omit<LayerProgress, "dir"> {
    return this.o.counters.progress({ digest: this.digest, state: this.state, kind: "whole", bytesTotal: this.o.blobSize });
  }

  close(): void {
    this.o.abort.abort();
    this.o.cache.unpin(this.digest);
  }
}
