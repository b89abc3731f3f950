import { stat } from "node:fs/promises";
import type { Command } from "commander";
import { LazypullError } from "@lazypull/errors";
import { fileRangeReader, openStargz, type StargzReader } from "@lazypull/stargz-format";

export interface OpenedBlob {
  reader: StargzReader;
  /** range reads made so far (opening a blob with a TOC under 1 MiB takes at most 2) */
  reads(): number;
  close(): Promise<void>;
}

/** Open a local eStargz/stargz blob by path (the local mode of `toc`, `ls` and `cat`). */
export async function openLocalBlob(path: string, expectedTocDigest?: string): Promise<OpenedBlob> {
  const st = await stat(path).catch(() => undefined);
  if (!st?.isFile()) throw new LazypullError("CLI_NO_SUCH_BLOB", `${path} is not a file`, { path });
  const rr = await fileRangeReader(path);
  try {
    const reader = await openStargz(rr, { label: path, ...(expectedTocDigest ? { expectedTocDigest } : {}) });
    return { reader, reads: () => rr.reads, close: () => rr.close() };
  } catch (err) {
    await rr.close();
    throw err;
  }
}

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
