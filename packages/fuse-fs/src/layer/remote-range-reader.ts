import type { BlobSource, ImageReference } from "@lazypull/registry-client";
import type { RangeReader } from "@lazypull/stargz-format";
import type { Logger } from "pino";
import type { FetchCounters } from "./counters.js";
import { withAttemptSignal, withRetries, type RetryPolicy } from "./retry.js";

/**
 * The RangeReader stargz-format opens a blob through: each read is one range request (retried), exactly
 * as asked. How much of the tail to read is the opener's call (`openStargz`: exactly TOC + footer when
 * the descriptor says where they are, else its own guess), so this adds no guess of its own.
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
}): RangeReader {
  return {
    size: o.size,
    async read(offset: number, length: number): Promise<Buffer> {
      const end = Math.min(o.size, offset + length);
      if (end <= offset) return Buffer.alloc(0);
      return withRetries({ digest: o.digest, offset, length: end - offset }, o.retry, o, async () => {
        const buf = await withAttemptSignal(o.signal, o.retry.attemptTimeoutMs, (s) => o.source.fetchRange(o.ref, o.digest, { offset, length: end - offset }, s));
        o.counters.noteRequest(buf.length);
        return buf;
      });
    },
  };
}

/**
 * Keeps what a RangeReader handed out while a layer opens, so the TOC + footer bytes it fetched can be
 * stored without fetching them again (`tail`), then forgets them.
 */
export function recordingReader(inner: RangeReader): RangeReader & { tail(from: number): Buffer | undefined } {
  let pieces: Array<{ offset: number; bytes: Buffer }> = [];
  return {
    size: inner.size,
    async read(offset, length) {
      const bytes = await inner.read(offset, length);
      pieces.push({ offset, bytes });
      return bytes;
    },
    tail(from) {
      const parts: Buffer[] = [];
      let at = from;
      while (at < inner.size) {
        const p = pieces.find((x) => x.offset <= at && at < x.offset + x.bytes.length);
        if (!p) break;
        const end = Math.min(inner.size, p.offset + p.bytes.length);
        parts.push(p.bytes.subarray(at - p.offset, end - p.offset));
        at = end;
      }
      pieces = [];
      return at === inner.size ? Buffer.concat(parts) : undefined;
    },
  };
}

/** Serves `[size - tail.length, size)` from `tail`, the rest through `inner`. */
export function tailFirstReader(tail: Buffer, inner: RangeReader): RangeReader & { release(): void } {
  let held: Buffer | undefined = tail;
  const start = inner.size - tail.length;
  return {
    size: inner.size,
    async read(offset, length) {
      if (held && offset >= start) return held.subarray(offset - start, Math.min(inner.size, offset + length) - start);
      return inner.read(offset, length);
    },
    release() {
      held = undefined;
    },
  };
}
