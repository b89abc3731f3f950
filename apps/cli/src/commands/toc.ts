import type { Command } from "commander";
import { openLocalBlob } from "../local-blob.js";

/** The TOC as stored, plus what the reader derived from the blob. */
export async function localToc(path: string, expectedTocDigest?: string): Promise<{ format: string; tocDigest: string; tocOffset: number; prefetchEnd: number; toc: unknown }> {
  const blob = await openLocalBlob(path, expectedTocDigest);
  try {
    const r = blob.reader;
    return { format: r.format, tocDigest: r.tocDigest, tocOffset: r.tocOffset, prefetchEnd: r.prefetchEnd, toc: await r.readToc() };
  } finally {
    await blob.close();
  }
}

export function register(program: Command): void {
  program
    .command("toc")
    .description("print the TOC (stargz.index.json) of an eStargz or stargz blob")
    .argument("<blob>", "local blob file")
    .option("--verify <digest>", "fail unless the TOC hashes to this sha256 digest")
    .option("--json", "print format, TOC digest and offsets around the TOC")
    .action(async (blob: string, opts: { verify?: string; json?: boolean }) => {
      const t = await localToc(blob, opts.verify);
      process.stdout.write(`${JSON.stringify(opts.json ? t : t.toc, null, 2)}\n`);
    });
}
