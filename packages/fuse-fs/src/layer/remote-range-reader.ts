import type { BlobSource, ImageReference } from "@lazypull/registry-client";
import type { RangeReader } from "@lazypull/stargz-format";
import type { Logger } from "pino";
import type { FetchCounters } from "./counters.js";
import { withAttemptSignal, withRetries, type RetryPolicy } from "./retry.js";

/**
 * The RangeReader stargz-format opens a blob through. The first read near the end fetches the blob's
 * last `tailBytes` once, so footer and TOC usually cost one request together.
 */
export function remoteRangeReader(o: {
  source: BlobSource;
  ref: ImageReference;
  digest: string;
  size: number;
  counters: FetchCounters;
  log: Logger;
  retry: RetryPolicy;
  signal: AbortSignal;
  tailBytes?: number;
}): RangeReader {
  const tailStart = Math.max(0, o.size - (o.tailBytes ?? 512 * 1024));
  let tail: Promise<Buffer> | undefined;
  const fetch = (offset: number, length: number) =>
    withRetries({ digest: o.digest, offset, length }, o.retry, o, async () => {
      const buf = await withAttemptSignal(o.signal, o.retry.attemptTimeoutMs, (s) => o.source.fetchRange(o.ref, o.digest, { offset, length }, s));
      o.counters.noteRequest(buf.length);
      return buf;
    });
  return {
    size: o.size,
    async read(offset: number, length: number): Promise<Buffer> {
      const end = Math.min(o.size, offset + length);
      if (end <= offset) return Buffer.alloc(0);
      if (offset >= tailStart) {
        if (!tail) {
          tail = fetch(tailStart, o.size - tailStart);
          tail.catch(() => (tail = undefined));
        }
        return (await tail).subarray(offset - tailStart, end - tailStart);
      }
      return fetch(offset, end - offset);
    },
  };
}
