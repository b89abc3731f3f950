import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { cpus } from "node:os";
import pLimit from "p-limit";
import {
  MediaType,
  parseReference,
  type Descriptor,
  type ImageConfig,
  type ImageManifest,
  type ImageReference,
  type RegistryClient,
} from "@lazypull/registry-client";
import {
  DEFAULT_CHUNK_SIZE,
  TOC_DIGEST_ANNOTATION,
  UNCOMPRESSED_SIZE_ANNOTATION,
  ESTARGZ_FOOTER_SIZE,
  checkTocLocation,
  parseFooter,
  tocLocationAnnotations,
  tocLocationFromAnnotations,
  type TocLocation,
} from "@lazypull/stargz-format";
import { convertLayer } from "./convert-layer.js";
import { ConvertError } from "./errors.js";
import { LayerMemo, type ConvertedLayerRecord } from "./layer-memo.js";

export interface ConvertImageOptions {
  client: RegistryClient;
  /** source image reference (any registry the client can read) */
  source: string;
  /** destination reference; the registry may differ from the source's */
  destination: string;
  /** platform to pick from an index, e.g. "linux/amd64" (default: the client's) */
  platform?: string;
  chunkSize?: number;
  level?: number;
  /** files (paths inside the image) to put first and prefetch; applied to every layer that has them */
  prioritizedFiles?: string[];
  /** layers converted at once (default 2) */
  layerConcurrency?: number;
  tmpDir?: string;
  /** where finished conversions are remembered for reuse; no reuse across runs without it */
  memoDir?: string;
  signal?: AbortSignal;
  onProgress?: (event: LayerProgressEvent) => void;
}

export type LayerPhase = "waiting" | "converting" | "pushing" | "done" | "reused";

export interface LayerProgressEvent {
  index: number;
  sourceDigest: string;
  phase: LayerPhase;
  /** source bytes consumed */
  bytes: number;
  total: number;
}

export interface ConvertedLayer extends ConvertedLayerRecord {
  outcome: "converted" | "reused" | "already-estargz";
}

export interface ConvertImageResult {
  /** destination reference as given */
  reference: string;
  /** digest of the pushed manifest */
  digest: string;
  manifest: ImageManifest;
  config: ImageConfig;
  layers: ConvertedLayer[];
  /** prioritised paths found in none of the converted layers (usually a typo or a stale list) */
  missingPrioritized: string[];
}

function sha256(b: Buffer): string {
  return `sha256:${createHash("sha256").update(b).digest("hex")}`;
}

/**
 * Runs `fn` over `items` with at most `limit` in flight, results in input order. The first failure
 * stops what has not started: a layer that cannot be converted fails the image, and converting and
 * pushing the layers after it would be work (and registry writes) for nothing.
 */
async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const run = pLimit(limit);
  return Promise.all(
    items.map((item, i) =>
      run(fn, item, i).catch((err: unknown) => {
        run.clearQueue();
        throw err;
      }),
    ),
  );
}

/**
 * Converts a registry image to eStargz: every layer is streamed through the writer and pushed, then a
 * config with the new `diff_ids` and an OCI manifest whose layers carry the TOC digest and
 * uncompressed size annotations. Layers that already are eStargz are kept; layers converted before
 * with the same options (see `memoDir`) are reused when the destination still has them.
 */
export async function convertImage(opts: ConvertImageOptions): Promise<ConvertImageResult> {
  const { client } = opts;
  const src = parseReference(opts.source);
  const dst = parseReference(opts.destination);
  const resolved = await client.resolve(src, { platform: opts.platform, signal: opts.signal });
  const { manifest, config } = resolved;
  if (manifest.layers.length !== config.rootfs.diff_ids.length) {
    throw new ConvertError("CONVERT_BAD_SOURCE", `${src.toString()}: ${manifest.layers.length} layers but ${config.rootfs.diff_ids.length} diff_ids in its config`, {
      source: src.toString(),
    });
  }
  const writer = {
    chunkSize: opts.chunkSize ?? DEFAULT_CHUNK_SIZE,
    level: opts.level,
    prioritizedFiles: opts.prioritizedFiles,
    // Several layers at once share the cores between them.
    concurrency: Math.max(1, Math.floor(cpus().length / Math.min(opts.layerConcurrency ?? 2, manifest.layers.length || 1))),
  };
  const memo = new LayerMemo(opts.memoDir);
  const emit = (e: LayerProgressEvent) => opts.onProgress?.(e);
  manifest.layers.forEach((l, index) => emit({ index, sourceDigest: l.digest, phase: "waiting", bytes: 0, total: l.size }));

  const layers = await mapLimit(manifest.layers, opts.layerConcurrency ?? 2, async (layer, index): Promise<ConvertedLayer> => {
    const base = { index, sourceDigest: layer.digest, total: layer.size };
    const existingToc = layer.annotations?.[TOC_DIGEST_ANNOTATION];
    if (existingToc) {
      await client.pushBlob(dst, layer.digest, layer.size, () => streamOf(client, src, layer), sameRegistry(src, dst) ? { from: src, signal: opts.signal } : { signal: opts.signal });
      emit({ ...base, phase: "reused", bytes: layer.size });
      return {
        outcome: "already-estargz",
        sourceDigest: layer.digest,
        digest: layer.digest,
        size: layer.size,
        diffId: config.rootfs.diff_ids[index] as string,
        tocDigest: existingToc,
        uncompressedSize: Number(layer.annotations?.[UNCOMPRESSED_SIZE_ANNOTATION] ?? 0),
        // an earlier lazypull convert recorded it: kept when it still fits the blob
        ...optional("tocLocation", knownLocation(layer)),
      };
    }
    const key = LayerMemo.key(layer.digest, { ...writer, concurrency: undefined });
    const known = await memo.get(key);
    if (known && (await client.blobExists(dst, known.digest, { signal: opts.signal }))) {
      if (!known.tocLocation) {
        // remembered before the memo kept it: the blob's footer says (one small range read), and the memo learns it
        const tocLocation = await locationFromFooter(client, dst, known, opts.signal);
        if (tocLocation) {
          known.tocLocation = tocLocation;
          await memo.put(key, known);
        }
      }
      emit({ ...base, phase: "reused", bytes: layer.size });
      return { ...known, outcome: "reused" };
    }
    emit({ ...base, phase: "converting", bytes: 0 });
    const rec = await convertLayer({
      client,
      source: src,
      destination: dst,
      layer,
      writer,
      tmpDir: opts.tmpDir,
      signal: opts.signal,
      onBytes: (bytes) => emit({ ...base, phase: "converting", bytes }),
      onPushing: () => emit({ ...base, phase: "pushing", bytes: layer.size }),
    });
    await memo.put(key, rec);
    emit({ ...base, phase: "done", bytes: layer.size });
    return { ...rec, outcome: "converted" };
  });

  const newConfig: ImageConfig = { ...config, rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) } };
  const configBytes = Buffer.from(JSON.stringify(newConfig));
  const configDesc: Descriptor = { mediaType: MediaType.OciConfig, digest: sha256(configBytes), size: configBytes.length };
  await client.pushBlob(dst, configDesc.digest, configDesc.size, configBytes, { signal: opts.signal });

  const newManifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: configDesc,
    layers: layers.map((l) => ({
      mediaType: MediaType.OciLayerGzip,
      digest: l.digest,
      size: l.size,
      annotations: {
        [TOC_DIGEST_ANNOTATION]: l.tocDigest,
        [UNCOMPRESSED_SIZE_ANNOTATION]: String(l.uncompressedSize),
        ...(l.tocLocation ? tocLocationAnnotations(l.tocLocation) : {}),
      },
    })),
  };
  const manifestBytes = Buffer.from(JSON.stringify(newManifest));
  const digest = await client.pushManifest(dst, manifestBytes, MediaType.OciManifest, { signal: opts.signal });
  const converted = layers.filter((l) => l.missingPrioritized);
  const missingPrioritized = (opts.prioritizedFiles ?? []).filter((p) => converted.length > 0 && converted.every((l) => l.missingPrioritized?.includes(p)));
  return { reference: dst.toString(), digest, manifest: newManifest, config: newConfig, layers, missingPrioritized };
}

function optional<K extends string, V>(key: K, value: V | undefined): { [k in K]?: V } {
  return value === undefined ? {} : ({ [key]: value } as { [k in K]: V });
}

async function locationFromFooter(client: RegistryClient, ref: ImageReference, layer: { digest: string; size: number }, signal?: AbortSignal): Promise<TocLocation | undefined> {
  try {
    const n = Math.min(layer.size, ESTARGZ_FOOTER_SIZE);
    const footer = parseFooter(await client.fetchRange(ref, layer.digest, { offset: layer.size - n, length: n }, signal));
    if (!footer) return undefined;
    return checkTocLocation({ offset: footer.tocOffset, length: layer.size - footer.footerSize - footer.tocOffset, footerSize: footer.footerSize }, layer.size);
  } catch (err) {
    if (signal?.aborted) throw err;
    return undefined; // the manifest goes without the hint: readers guess the tail
  }
}

function knownLocation(layer: Descriptor): TocLocation | undefined {
  try {
    return tocLocationFromAnnotations(layer.annotations, layer.size);
  } catch {
    return undefined; // readers would ignore it too
  }
}

function sameRegistry(a: ImageReference, b: ImageReference): boolean {
  return a.registry === b.registry;
}

function streamOf(client: RegistryClient, ref: ImageReference, layer: Descriptor) {
  // pushBlob wants a synchronous stream factory; the body is fetched lazily on first read.
  return Readable.from(
    (async function* () {
      const body = await client.fetchBlob(ref, layer.digest);
      for await (const chunk of body as AsyncIterable<Buffer>) yield chunk;
    })(),
  );
}
