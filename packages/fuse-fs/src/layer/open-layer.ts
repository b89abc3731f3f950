import { setMaxListeners } from "node:events";
import type { ChunkCache } from "@lazypull/blob-cache";
import { describeError } from "@lazypull/errors";
import type { BlobSource } from "@lazypull/registry-client";
import { inflateVerified, openStargz, TOC_DIGEST_ANNOTATION, type StargzReader } from "@lazypull/stargz-format";
import type { Logger } from "pino";
import { FuseFsError } from "../errors.js";
import type { LayerSpec, LayerState } from "../types.js";
import type { ByteLru } from "./byte-lru.js";
import type { DemandGate } from "./demand-gate.js";
import { ChunkStore } from "./chunk-store.js";
import { FetchCounters } from "./counters.js";
import { EstargzLayer } from "./estargz-layer.js";
import type { ServedLayer } from "./layer.js";
import { remoteRangeReader } from "./remote-range-reader.js";
import { defaultRetryPolicy, type RetryPolicy } from "./retry.js";
import { WholeLayer } from "./whole-layer.js";


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

  const open = () =>
    openStargz(remoteRangeReader({ source: o.source, ref, digest, size: descriptor.size, counters, log, retry, signal: abort.signal }), {
      ...(tocDigest ? { expectedTocDigest: tocDigest } : {}),
      label: digest,
    });
  let reader: StargzReader;
  try {
    try {
      reader = await open();
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
