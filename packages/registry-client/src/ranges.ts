// Reading parts of a blob: one range per GET, or several in one multipart/byteranges GET where the registry
// allows it. What each registry allows is remembered here (the capability cache) so a registry that refused
// or ignored a multi-range request gets parallel single ranges from then on. A 200 to a range request is
// never taken as the range: the range is sliced out of it. A 206 whose body ends before its Content-Range (or
// its multipart parts) do is a TransientError, retried by the transport like a dropped connection.
import pLimit from "p-limit";
import { drain, readAll, sliceBody } from "./body.js";
import { blobCall, checkDigest, checkRange, ctxOf } from "./calls.js";
import { RegistryError, type RegistryErrorContext } from "./errors.js";
import { byterangesBoundary, parseContentRange, splitByteranges, type BytePart } from "./multipart.js";
import type { Reference } from "./reference.js";
import { TransientError } from "./retry.js";
import { errorFor, header, type Response, type Transport } from "./transport.js";
import type { ByteRange } from "./types.js";

export interface RangeOptions {
  /** try several ranges in one request (default true) */
  multiRange?: boolean;
  /** parallel single-range requests when falling back (default 8) */
  rangeConcurrency?: number;
  /** what a 200 answer to a range request means: slice the range out of the body (default) or fail */
  onRangeIgnored?: "slice" | "error";
}

export interface RangeCounters {
  rangeRequests: number;
  multiRangeHits: number;
  multiRangeFallbacks: number;
  rangeIgnored: number;
}

interface RegistryCaps {
  multiRange?: boolean;
}

type Wanted = { r: ByteRange; i: number };

/** Exactly `n` bytes of a 206 body; fewer is a TransientError (the body was cut short on the way). */
async function readPart(res: Response, t: Transport, n: number, ctx: RegistryErrorContext, what: string): Promise<Buffer> {
  const data = await readAll(res.body, res.counter, n, ctx);
  if (data.length !== n) throw new TransientError(`${what}: the body ended after ${data.length} of ${n} bytes`);
  return data;
}

export class RangeReader {
  readonly counters: RangeCounters = { rangeRequests: 0, multiRangeHits: 0, multiRangeFallbacks: 0, rangeIgnored: 0 };
  private readonly caps = new Map<string, RegistryCaps>();

  constructor(
    private readonly t: Transport,
    private readonly opts: RangeOptions,
  ) {}

  /** Bytes [offset, offset+length) of a blob. */
  async fetchRange(ref: Reference, digest: string, range: ByteRange, signal?: AbortSignal): Promise<Buffer> {
    checkDigest(digest, ref);
    const ctx = { ...ctxOf(ref, digest), offset: range.offset, length: range.length };
    checkRange(range, ctx);
    if (range.length === 0) return Buffer.alloc(0);
    const end = range.offset + range.length - 1;
    this.counters.rangeRequests++;
    const call = blobCall(ref, digest, "GET", signal, `bytes=${range.offset}-${end}`);
    return this.t.request(call, async (res) => {
      if (res.status === 206) {
        const cr = parseContentRange(header(res.headers, "content-range"));
        if (!cr || cr.start > range.offset || cr.end < end) {
          await drain(res.body, res.counter);
          throw new RegistryError("REGISTRY_BAD_RESPONSE", `range ${range.offset}-${end} of ${digest} answered with Content-Range ${header(res.headers, "content-range")}`, ctx);
        }
        const body = await readPart(res, this.t, cr.end - cr.start + 1, ctx, `range ${cr.start}-${cr.end} of ${digest}`);
        return cr.start === range.offset && cr.end === end ? body : body.subarray(range.offset - cr.start, range.offset - cr.start + range.length);
      }
      if (res.status === 200) return this.sliceIgnoredRange(res, ref, digest, range, ctx);
      if (res.status === 416) {
        await drain(res.body, res.counter);
        throw new RegistryError("REGISTRY_RANGE_NOT_SATISFIABLE", `range ${range.offset}-${end} is outside blob ${digest}`, { ...ctx, status: 416 });
      }
      throw await errorFor(res, res.counter, ctx, `range ${range.offset}-${end} of blob ${digest}`);
    });
  }

  /** Several ranges, in one multipart/byteranges request where the registry allows it; results in the order asked. */
  async fetchRanges(ref: Reference, digest: string, ranges: ByteRange[], signal?: AbortSignal): Promise<Buffer[]> {
    checkDigest(digest, ref);
    const wanted: Wanted[] = ranges.map((r, i) => ({ r, i })).filter(({ r }) => r.length > 0);
    const out: Buffer[] = ranges.map(() => Buffer.alloc(0));
    if (wanted.length === 0) return out;
    const caps = this.capsOf(ref.registry);
    if (wanted.length === 1 || this.opts.multiRange === false || caps.multiRange === false) {
      await this.fetchSingles(ref, digest, wanted, out, signal);
      return out;
    }
    const ctx = ctxOf(ref, digest);
    for (const { r } of wanted) checkRange(r, ctx);
    const spec = `bytes=${wanted.map(({ r }) => `${r.offset}-${r.offset + r.length - 1}`).join(",")}`;
    this.counters.rangeRequests++;
    const missing = await this.t.request(blobCall(ref, digest, "GET", signal, spec), async (res) => {
      let parts: BytePart[];
      if (res.status === 206) {
        parts = await this.readMultiRange(res, digest, wanted, ctx);
        this.counters.multiRangeHits++;
        caps.multiRange = true;
      } else if (res.status === 200) {
        // Range ignored (or refused as too costly, as Go's ServeContent does): slice from the body, then use single ranges
        caps.multiRange = false;
        this.counters.multiRangeFallbacks++;
        this.counters.rangeIgnored++;
        const hi = Math.max(...wanted.map(({ r }) => r.offset + r.length));
        const data = await sliceBody(res.body, res.counter, 0, hi);
        if (!data) throw new RegistryError("REGISTRY_RANGE_NOT_SATISFIABLE", `ranges reach past the end of blob ${digest}`, ctx);
        parts = [{ start: 0, end: hi - 1, data }];
      } else if (res.status === 400 || res.status === 416 || res.status === 501) {
        caps.multiRange = false;
        this.counters.multiRangeFallbacks++;
        await drain(res.body, res.counter);
        return wanted;
      } else {
        throw await errorFor(res, res.counter, ctx, `ranges of blob ${digest}`);
      }
      const left: Wanted[] = [];
      for (const w of wanted) {
        const p = parts.find((p) => p.start <= w.r.offset && p.end >= w.r.offset + w.r.length - 1);
        if (p) out[w.i] = p.data.subarray(w.r.offset - p.start, w.r.offset - p.start + w.r.length);
        else left.push(w);
      }
      return left;
    });
    if (missing.length) await this.fetchSingles(ref, digest, missing, out, signal);
    return out;
  }

  /** The parts of a 206 to a multi-range request: multipart/byteranges, or one range the registry merged them into. */
  private async readMultiRange(res: Response, digest: string, wanted: Wanted[], ctx: RegistryErrorContext): Promise<BytePart[]> {
    const boundary = byterangesBoundary(header(res.headers, "content-type"));
    if (boundary) {
      const maxBytes = wanted.reduce((n, { r }) => n + r.length, 0) * 2 + 64 * 1024 + wanted.length * 512;
      const body = await readAll(res.body, res.counter, maxBytes, ctx);
      const parts = splitByteranges(body, boundary);
      if (parts === "truncated") throw new TransientError(`multipart/byteranges body for ${digest} ended early (after ${body.length} bytes)`);
      if (parts === "malformed") throw new RegistryError("REGISTRY_BAD_RESPONSE", `malformed multipart/byteranges for ${digest}`, ctx);
      return parts;
    }
    // the registry merged the ranges into one
    const cr = parseContentRange(header(res.headers, "content-range"));
    const lo = Math.min(...wanted.map(({ r }) => r.offset));
    const hi = Math.max(...wanted.map(({ r }) => r.offset + r.length - 1));
    if (!cr || cr.end - cr.start > 2 * (hi - lo + 1) + (1 << 20)) {
      await drain(res.body, res.counter);
      throw new RegistryError("REGISTRY_BAD_RESPONSE", `multi-range answer for ${digest} has Content-Range ${header(res.headers, "content-range")}`, ctx);
    }
    const data = await readPart(res, this.t, cr.end - cr.start + 1, ctx, `ranges of ${digest} merged into ${cr.start}-${cr.end}`);
    return [{ start: cr.start, end: cr.end, data }];
  }

  private async fetchSingles(ref: Reference, digest: string, todo: Wanted[], out: Buffer[], signal?: AbortSignal): Promise<void> {
    const limit = pLimit(this.opts.rangeConcurrency ?? 8);
    await Promise.all(
      todo.map((w) =>
        limit(async () => {
          out[w.i] = await this.fetchRange(ref, digest, w.r, signal);
        }),
      ),
    );
  }

  private async sliceIgnoredRange(res: Response, ref: Reference, digest: string, range: ByteRange, ctx: RegistryErrorContext): Promise<Buffer> {
    this.counters.rangeIgnored++;
    if (this.opts.onRangeIgnored === "error") {
      res.body.destroy();
      throw new RegistryError("REGISTRY_RANGE_UNSUPPORTED", `${ref.registry} ignored Range for blob ${digest} and sent the whole blob`, { ...ctx, status: 200 });
    }
    const data = await sliceBody(res.body, res.counter, range.offset, range.length);
    if (!data) throw new RegistryError("REGISTRY_RANGE_NOT_SATISFIABLE", `range ${range.offset}+${range.length} is outside blob ${digest}`, ctx);
    return data;
  }

  private capsOf(registry: string): RegistryCaps {
    let c = this.caps.get(registry);
    if (!c) {
      c = {};
      this.caps.set(registry, c);
    }
    return c;
  }
}
