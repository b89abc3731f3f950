import type { FileNode } from "@lazypull/stargz-format";
import type { LayerProgress, PrefetchPolicy } from "../types.js";

/** A layer as the mount (and the CLI's `ls`/`cat`) sees it: a tree answered from memory, bytes on demand. */
export interface ServedLayer {
  readonly digest: string;
  readonly kind: LayerProgress["kind"];
  lookup(path: string): FileNode | undefined;
  /** child names of a directory, sorted */
  readdir(path: string): string[] | undefined;
  /** every node, parents first */
  walk(): Iterable<FileNode>;
  readonly nodeCount: number;
  /** bytes [offset, offset+length) of a regular file; shorter only at end of file */
  read(path: string, offset: number, length: number, hint?: ReadHint): Promise<Buffer>;
  /**
   * fetch these files whole now, at a reader's priority, in as few range requests as their places in
   * the blob allow: a caller that knows what is about to be read (predictive prefetch)
   */
  prefetchFiles(paths: string[]): Promise<void>;
  /**
   * the start of a file whose first chunk is big and not yet here, inflated from a short range ahead of
   * that chunk: unverified, so a hint (what to fetch next), never bytes to serve. Undefined when the
   * layer cannot tell sooner than a read would.
   */
  peekHead?(path: string): Promise<Buffer | undefined>;
  /** fetch ahead of reads in the background, per policy */
  startBackground(policy: PrefetchPolicy): void;
  progress(): Omit<LayerProgress, "dir" | "overlayDir">;
  /** wait for the cache writes of what was already fetched */
  flush(): Promise<void>;
  /** stop background work and release cache pins (cache writes not yet done are dropped: flush first to keep them) */
  close(): void;
}

export interface ReadHint {
  /** the caller reads sequentially: fetch ahead of it */
  sequential?: boolean;
}

/** Normalises a path to the TOC form stargz-format uses: no leading `./` or `/`, no trailing `/`, root "". */
export function normalisePath(p: string): string {
  let s = p;
  while (s.startsWith("./")) s = s.slice(2);
  s = s.replace(/^\/+/, "").replace(/\/+$/, "");
  if (s === ".") return "";
  return s;
}
