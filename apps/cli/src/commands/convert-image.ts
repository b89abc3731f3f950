import { convertImage, type ConvertImageResult, type LayerPhase } from "@lazypull/image-convert";
import { convertMemoDir, createRegistryClient } from "../registry.js";
import { MultiProgress } from "../ui/multi-progress.js";
import { formatBytes } from "../ui/progress.js";
import { readPrioritizeFile } from "../convert-local.js";

export interface ImageConvertFlags {
  chunkSize?: number;
  level?: number;
  prioritize?: string;
  platform?: string;
  json?: boolean;
}

const phaseText: Record<LayerPhase, string> = {
  waiting: "waiting",
  converting: "converting",
  pushing: "pushing",
  done: "done",
  reused: "reused",
};

/** `lazypull convert SRC DST` for registry images: per-layer progress on a TTY, JSON on request. */
export async function convertRegistryImage(source: string, destination: string, flags: ImageConvertFlags): Promise<ConvertImageResult> {
  const client = createRegistryClient({ platform: flags.platform });
  const bars = new MultiProgress(process.stderr, Boolean(process.stderr.isTTY) && !process.env.CI && !flags.json);
  try {
    const result = await convertImage({
      client,
      source,
      destination,
      platform: flags.platform,
      chunkSize: flags.chunkSize,
      level: flags.level,
      prioritizedFiles: flags.prioritize ? await readPrioritizeFile(flags.prioritize) : undefined,
      memoDir: convertMemoDir(),
      onProgress: (e) => bars.set(e.index, { label: `layer ${e.index + 1} ${e.sourceDigest.slice(7, 19)}`, done: e.bytes, total: e.total, status: phaseText[e.phase] }),
    });
    bars.finish();
    if (result.missingPrioritized.length) {
      process.stderr.write(`lazypull: ${result.missingPrioritized.length} prioritised paths are in no layer: ${result.missingPrioritized.slice(0, 5).join(", ")}${result.missingPrioritized.length > 5 ? ", …" : ""}\n`);
    }
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ reference: result.reference, digest: result.digest, layers: result.layers, missingPrioritized: result.missingPrioritized })}\n`);
    } else {
      for (const l of result.layers) {
        process.stdout.write(`${l.sourceDigest.slice(0, 19)} → ${l.digest.slice(0, 19)}  ${formatBytes(l.size).padStart(10)}  ${l.outcome}\n`);
      }
      process.stdout.write(`${result.reference}@${result.digest}\n`);
    }
    return result;
  } finally {
    await client.close();
  }
}
