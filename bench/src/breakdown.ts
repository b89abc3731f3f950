import type { RequestRecord } from "./delay-proxy.js";

/** Where a lazy start's time went, in ms, from the proxy's view of its requests. */
export interface LazyBreakdown {
  /** spawn → first request: node start-up, CLI load, host config */
  startup: number;
  /** first request → last manifest/config response: resolving the reference */
  resolve: number;
  /** resolve → last TOC (footer) response: reading each layer's TOC */
  toc: number;
  /** wall time with at least one data read in flight before the first output (landmark prefetch included) */
  dataReads: number;
  /** the rest: FUSE mount, fuse-overlayfs, podman and the command's own start, minus data waits */
  mountAndPodman: number;
}

const isBlob = (r: RequestRecord) => /\/blobs\/sha256:/.test(r.path);

/**
 * Splits a time to first output into phases. A ranged blob request is a TOC read when it asks for
 * the tail of the blob (suffix range `bytes=-N`, or it ends at the layer's last byte); every other
 * ranged request is a data read. `layerSizes` maps digest → compressed size.
 */
export function lazyBreakdown(log: RequestRecord[], spawnedAt: number, firstOutputMs: number, layerSizes: Map<string, number>): LazyBreakdown {
  const until = spawnedAt + firstOutputMs;
  const before = log.filter((r) => r.at <= until);
  const first = before[0]?.at ?? until;
  const isToc = (r: RequestRecord) => {
    if (!isBlob(r) || !r.range) return false;
    if (/^bytes=-\d+$/.test(r.range)) return true;
    const digest = /sha256:[0-9a-f]{64}/.exec(r.path)?.[0];
    const end = /^bytes=\d+-(\d+)$/.exec(r.range)?.[1];
    const size = digest ? layerSizes.get(digest) : undefined;
    return size !== undefined && end !== undefined && Number(end) >= size - 1;
  };
  const meta = before.filter((r) => !r.range);
  const resolveEnd = Math.max(first, ...meta.map((r) => Math.min(r.doneAt || r.at, until)));
  const tocEnd = Math.max(resolveEnd, ...before.filter(isToc).map((r) => Math.min(r.doneAt || r.at, until)));
  const data = before.filter((r) => r.range && !isToc(r)).map((r) => [Math.max(r.at, tocEnd), Math.min(r.doneAt || until, until)] as const);
  const dataReads = unionLength(data.filter(([a, b]) => b > a));
  const startup = first - spawnedAt;
  const resolve = resolveEnd - first;
  const toc = tocEnd - resolveEnd;
  return { startup, resolve, toc, dataReads, mountAndPodman: Math.max(0, firstOutputMs - startup - resolve - toc - dataReads) };
}

/** total length covered by a set of intervals */
export function unionLength(intervals: (readonly [number, number])[]): number {
  const sorted = [...intervals].sort((a, b) => a[0] - b[0]);
  let total = 0;
  let curStart = -Infinity;
  let curEnd = -Infinity;
  for (const [a, b] of sorted) {
    if (a > curEnd) {
      if (curEnd > curStart) total += curEnd - curStart;
      curStart = a;
      curEnd = b;
    } else curEnd = Math.max(curEnd, b);
  }
  if (curEnd > curStart) total += curEnd - curStart;
  return total;
}
