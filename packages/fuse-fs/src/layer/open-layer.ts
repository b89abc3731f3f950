import { setMaxListeners } from "node:events";
import type { ChunkCache } from "@lazypull/blob-cache";
import { describeError } from "@lazypull/errors";
import type { BlobSource } from "@lazypull/registry-client";
import {
  inflateVerified,
  openStargz,
  parseFooter,
  TOC_DIGEST_ANNOTATION,
  tocLocationFromAnnotations,
  type StargzReader,
  type TocLocation,
} from "@lazypull/stargz-format";
import type { Logger } from "pino";
import { FuseFsError } from "../errors.js";
import type { LayerSpec, LayerState } from "../types.js";
import type { ByteLru } from "./byte-lru.js";
import type { DemandGate } from "./demand-gate.js";
import { ChunkStore } from "./chunk-store.js";
import { FetchCounters } from "./counters.js";
import { EstargzLayer } from "./estargz-layer.js";
import type { ServedLayer } from "./layer.js";
import { recordingReader, remoteRangeReader, tailFirstReader } from "./remote-range-reader.js";
import { defaultRetryPolicy, type RetryPolicy } from "./retry.js";
import { WholeLayer } from "./whole-layer.js";

/**
 * The cache entry holding a layer's TOC member and footer (the blob's bytes `[TOC offset, end)`; its
 * length says where the TOC starts), beside the layer's chunks: a warm host opens the layer without a
 * request. Only kept for layers whose TOC digest annotation verifies it again on every read.
 */
export const TOC_CACHE_ID = "estargz:toc+footer";

export interface OpenLayerOptions {
  source: BlobSource;
  cache: ChunkCache;
  log: Logger;
  /** serve a stargz layer lazily even when no manifest annotation vouches for its TOC */
  allowUnverified?: boolean;
  retry?: RetryPolicy;
  readAheadBytes?: number;
  maxRequestBytes?: number;
  /** memory LRU of inflated chunks shared by every layer of a mount */
  memory?: ByteLru<string>;
  /** on-demand reads of every layer of the mount, which background fetching yields to */
  gate?: DemandGate;
  /** counters to fill (so progress can be shown while the layer is still opening) */
  counters?: FetchCounters;
  onState?: (state: LayerState) => void;
}

/** TOC + footer fetches started before their layer is opened (`prefetchToc`), by layer digest */
const early = new Map<string, { bytes: Promise<Buffer | undefined>; timer: NodeJS.Timeout }>();
/** how long fetched bytes nobody opened are kept */
const EARLY_TOC_TTL_MS = 60_000;

/**
 * Starts fetching an eStargz layer's TOC + footer now, when its descriptor says exactly where they are
 * (convert's location annotations): `openLayer` takes the bytes instead of asking again, so a caller can
 * start it as soon as the manifest is known, before its mount exists. Nothing is trusted until the TOC
 * digest verifies it there; bytes nobody claims are dropped after a minute. With `cache`, a TOC already
 * kept there is not fetched.
 */
export function prefetchToc(spec: LayerSpec, source: BlobSource, cache?: Pick<ChunkCache, "has">): void {
  const { descriptor, ref } = spec;
  const digest = descriptor.digest;
  if (early.has(digest) || !descriptor.annotations?.[TOC_DIGEST_ANNOTATION]) return;
  let location: TocLocation | undefined;
  try {
    location = tocLocationFromAnnotations(descriptor.annotations, descriptor.size, { label: digest });
  } catch {
    return; // openLayer says why, when the layer is opened
  }
  if (!location) return;
  const range = { offset: location.offset, length: descriptor.size - location.offset };
  // a warm host has it already: the open takes it from the cache, and no request goes out
  const bytes = (async () => ((await cache?.has({ blob: digest, id: TOC_CACHE_ID }).catch(() => false)) ? undefined : source.fetchRange(ref, digest, range)))().catch(() => undefined);
  const timer = setTimeout(() => early.delete(digest), EARLY_TOC_TTL_MS);
  timer.unref();
  early.set(digest, { bytes, timer });
}

function takeEarlyToc(digest: string): Promise<Buffer | undefined> | undefined {
  const e = early.get(digest);
  if (!e) return undefined;
  early.delete(digest);
  clearTimeout(e.timer);
  return e.bytes;
}

/**
 * Opens one layer for serving. A layer whose descriptor carries the TOC digest annotation is read
 * lazily (its TOC verified against it); any other layer is fetched whole, verified by its blob digest,
 * unless `allowUnverified` lets an unannotated stargz blob be read lazily too.
 */
export async function openLayer(spec: LayerSpec, o: OpenLayerOptions): Promise<ServedLayer> {
  const { descriptor, ref } = spec;
  const digest = descriptor.digest;
  const log = o.log.child({ layer: digest });
  const counters = o.counters ?? new FetchCounters();
  const retry = { ...defaultRetryPolicy, ...o.retry };
  const abort = new AbortController();
  // every fetch in flight on the layer listens to it (a busy layer has dozens): not a leak
  setMaxListeners(0, abort.signal);
  const tocDigest = descriptor.annotations?.[TOC_DIGEST_ANNOTATION];
  const zstd = descriptor.mediaType.endsWith("+zstd") || descriptor.mediaType.endsWith(".zstd");

  const whole = () => {
    o.onState?.("fetching");
    return WholeLayer.load({ ref, digest, blobSize: descriptor.size, source: o.source, cache: o.cache, counters, log, retry, abort, ...(o.onState ? { onState: o.onState } : {}) });
  };

  if (zstd || (!tocDigest && !o.allowUnverified)) {
    if (!tocDigest && !zstd) log.info("no TOC digest annotation: fetching the layer whole (verified by its blob digest)");
    return whole();
  }

  const location = annotatedLocation(descriptor.annotations, descriptor.size, digest, log);
  const remote = () => remoteRangeReader({ source: o.source, ref, digest, size: descriptor.size, counters, log, retry, signal: abort.signal });
  const tocKey = { blob: digest, id: TOC_CACHE_ID };
  const options = { ...(tocDigest ? { expectedTocDigest: tocDigest } : {}), label: digest };

  // not waited for: the next run's saving, not this one's
  const keepToc = (bytes: Buffer) => void o.cache.put(tocKey, bytes).catch((err: unknown) => log.debug({ err: describeError(err) }, "could not keep the TOC in the cache"));
  /** opens from TOC + footer bytes already here (the cache's, or fetched ahead), verified as any TOC; undefined when they do not open */
  const fromTail = async (tail: Buffer, tocLocation: TocLocation, what: string): Promise<StargzReader | undefined> => {
    const range = tailFirstReader(tail, remote());
    try {
      return await openStargz(range, { ...options, tocLocation });
    } catch (err) {
      log.warn({ err: describeError(err) }, `${what}: fetching it again`);
      return undefined;
    } finally {
      range.release();
    }
  };

  const fromCache = async (): Promise<StargzReader | undefined> => {
    if (!tocDigest) return undefined;
    const cached = await o.cache.get(tocKey).catch(() => undefined);
    if (!cached) return undefined;
    const offset = descriptor.size - cached.length;
    const footer = offset >= 0 ? parseFooter(cached) : undefined;
    if (!footer || footer.tocOffset !== offset) {
      log.warn({ bytes: cached.length }, "the cached TOC is not this layer's TOC and footer: dropped, fetching it again");
      return undefined;
    }
    // the fetched TOC's put overwrites the entry: a bad one is never served and does not stay
    return fromTail(cached, { offset, length: cached.length - footer.footerSize, footerSize: footer.footerSize }, "the cached TOC does not verify: dropped");
  };

  const open = async (): Promise<StargzReader> => {
    const range = recordingReader(remote());
    const r = await openStargz(range, { ...options, ...(location ? { tocLocation: location } : {}) });
    // taken even when not kept: the recorder lets go of what it held
    const tail = range.tail(r.tocOffset);
    if (location && r.tocOffset !== location.offset) {
      log.warn({ annotated: location.offset, footer: r.tocOffset }, "the TOC location annotation disagrees with the blob's footer (the footer was followed)");
    }
    if (tocDigest && tail) keepToc(tail);
    return r;
  };
  /** the bytes `prefetchToc` fetched, opened as the cache's are (verified by the TOC digest), and kept */
  const fromEarly = async (): Promise<StargzReader | undefined> => {
    const pending = takeEarlyToc(digest);
    if (!pending || !location || !tocDigest) return undefined;
    // no longer than one attempt of the usual open would wait: a stalled early fetch falls back to it
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<undefined>((res) => (timer = setTimeout(() => res(undefined), retry.attemptTimeoutMs ?? defaultRetryPolicy.attemptTimeoutMs)));
    const bytes = await Promise.race([pending, expired]);
    clearTimeout(timer);
    if (!bytes || bytes.length !== descriptor.size - location.offset) return undefined;
    counters.noteRequest(bytes.length);
    const r = await fromTail(bytes, location, "the TOC fetched ahead does not open");
    if (r) keepToc(bytes);
    return r;
  };
  let reader: StargzReader;
  try {
    try {
      reader = (await fromEarly()) ?? (await fromCache()) ?? (await open());
    } catch (err) {
      // a registries.conf mirror that sent a TOC that does not verify is passed over: open once more from the
      // next source (the registry's own bytes are the last word)
      if (!tocDigest || abort.signal.aborted || !o.source.reportBadBytes?.(ref, digest)) throw err;
      log.warn({ err: describeError(err) }, "a registry mirror sent a TOC that does not verify; opening the layer from the next source");
      reader = await open();
    }
  } catch (err) {
    if (tocDigest) {
      abort.abort();
      throw new FuseFsError("FUSEFS_BAD_LAYER", `layer ${digest} is annotated as eStargz but cannot be opened: ${describeError(err)}`, {
        digest,
        tocDigest,
      }, { cause: err });
    }
    log.info({ err: describeError(err) }, "not a stargz blob: fetching the layer whole");
    return whole();
  }
  if (!tocDigest) log.warn("serving a stargz layer whose TOC is not verified (allowUnverified)");
  const store = new ChunkStore({
    ref,
    digest,
    source: o.source,
    cache: o.cache,
    inflate: (c, b) => inflateVerified(c, b, digest),
    counters,
    log,
    retry,
    signal: abort.signal,
    ...(o.maxRequestBytes ? { maxRequestBytes: o.maxRequestBytes } : {}),
    ...(o.memory ? { memory: o.memory } : {}),
    ...(o.gate ? { gate: o.gate } : {}),
  });
  return new EstargzLayer({
    digest,
    blobSize: descriptor.size,
    reader,
    store,
    cache: o.cache,
    counters,
    log,
    abort,
    ...(o.readAheadBytes !== undefined ? { readAheadBytes: o.readAheadBytes } : {}),
  });
}

/** The TOC location the descriptor records, or undefined (none, or one that cannot be right: the open guesses instead). */
function annotatedLocation(annotations: Record<string, string> | undefined, size: number, digest: string, log: Logger): TocLocation | undefined {
  try {
    return tocLocationFromAnnotations(annotations, size, { label: digest });
  } catch (err) {
    log.warn({ err: describeError(err) }, "ignoring the layer's TOC location annotations");
    return undefined;
  }
}
