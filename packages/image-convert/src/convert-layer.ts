import { createReadStream, createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { Readable, Transform } from "node:stream";
import type { Descriptor, ImageReference, RegistryClient } from "@lazypull/registry-client";
import { convertToEstargz, type ConvertOptions } from "@lazypull/stargz-format";
import { ConvertError } from "./errors.js";
import type { ConvertedLayerRecord } from "./layer-memo.js";
import { makeWorkDir } from "./work-dir.js";

export interface LayerJob {
  client: RegistryClient;
  source: ImageReference;
  destination: ImageReference;
  layer: Descriptor;
  writer: Pick<ConvertOptions, "chunkSize" | "level" | "prioritizedFiles" | "concurrency">;
  tmpDir?: string;
  signal?: AbortSignal;
  /** source bytes read so far (compressed, as fetched) */
  onBytes?: (done: number) => void;
  /** the conversion finished and the upload started */
  onPushing?: () => void;
}

function counting(onBytes: ((n: number) => void) | undefined): Transform {
  let n = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      n += chunk.length;
      onBytes?.(n);
      cb(null, chunk);
    },
  });
}

/**
 * Streams one source layer from the registry through the eStargz writer into a temporary file, then
 * uploads it. The blob has to be complete before the upload starts because its digest names it.
 */
export async function convertLayer(job: LayerJob): Promise<ConvertedLayerRecord> {
  const work = await makeWorkDir(job.tmpDir);
  const blobPath = join(work, "layer.esgz");
  try {
    const body = await job.client.fetchBlob(job.source, job.layer.digest, job.signal);
    const input = (body as Readable).pipe(counting(job.onBytes));
    (body as Readable).on("error", (err) => input.destroy(err));
    let res;
    try {
      res = await convertToEstargz(input, createWriteStream(blobPath), { ...job.writer, tmpDir: work });
    } catch (err) {
      throw new ConvertError(
        "CONVERT_LAYER_FAILED",
        `converting layer ${job.layer.digest} of ${job.source.toString()} failed: ${err instanceof Error ? err.message : String(err)}`,
        { layer: job.layer.digest, source: job.source.toString() },
        { cause: err },
      );
    }
    job.onPushing?.();
    await job.client.pushBlob(job.destination, res.blobDigest, res.blobSize, () => createReadStream(blobPath), { signal: job.signal });
    return {
      sourceDigest: job.layer.digest,
      digest: res.blobDigest,
      size: res.blobSize,
      diffId: res.diffId,
      tocDigest: res.tocDigest,
      uncompressedSize: res.uncompressedSize,
      tocLocation: { offset: res.tocOffset, length: res.tocLength, footerSize: res.footerSize },
      missingPrioritized: res.missingPrioritized,
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
