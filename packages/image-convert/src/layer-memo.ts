import { createHash } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { TocLocation } from "@lazypull/stargz-format";

/** What converting one source layer with one set of options produced. */
export interface ConvertedLayerRecord {
  sourceDigest: string;
  digest: string;
  size: number;
  diffId: string;
  tocDigest: string;
  uncompressedSize: number;
  /**
   * Where the TOC member is in the blob (the `dev.lazypull.estargz.toc.*` annotations); absent in memo
   * records written before they existed and for eStargz layers from other converters.
   */
  tocLocation?: TocLocation;
  /** prioritised paths this layer did not contain */
  missingPrioritized?: string[];
}

/**
 * Remembers conversions on local disk, keyed by source digest and writer options, so converting an
 * image whose base layers were converted before (by any earlier `convert`) only checks that the
 * destination has the blob instead of converting again.
 */
export class LayerMemo {
  constructor(private readonly dir: string | undefined) {}

  static key(sourceDigest: string, options: unknown): string {
    return createHash("sha256").update(JSON.stringify([sourceDigest, options])).digest("hex");
  }

  async get(key: string): Promise<ConvertedLayerRecord | undefined> {
    if (!this.dir) return undefined;
    try {
      const rec = JSON.parse(await readFile(join(this.dir, `${key}.json`), "utf8")) as ConvertedLayerRecord;
      return typeof rec.digest === "string" && typeof rec.tocDigest === "string" ? rec : undefined;
    } catch {
      return undefined; // absent or unreadable: convert again
    }
  }

  async put(key: string, rec: ConvertedLayerRecord): Promise<void> {
    if (!this.dir) return;
    await mkdir(this.dir, { recursive: true });
    const tmp = join(this.dir, `${key}.${process.pid}.tmp`);
    await writeFile(tmp, JSON.stringify(rec));
    await rename(tmp, join(this.dir, `${key}.json`));
  }
}
