import { stat } from "node:fs/promises";
import { fileRangeReader, openStargz, type StargzReader } from "@lazypull/stargz-format";
import { CliError } from "./errors.js";

export interface OpenedBlob {
  reader: StargzReader;
  /** range reads made so far (opening a blob with a TOC under 1 MiB takes at most 2) */
  reads(): number;
  close(): Promise<void>;
}

/** Open a local eStargz/stargz blob by path (the local mode of `toc`, `ls` and `cat`). */
export async function openLocalBlob(path: string, expectedTocDigest?: string): Promise<OpenedBlob> {
  const st = await stat(path).catch(() => undefined);
  if (!st?.isFile()) throw new CliError("CLI_NO_SUCH_BLOB", `${path} is not a file`, { path });
  const rr = await fileRangeReader(path);
  try {
    const reader = await openStargz(rr, { label: path, ...(expectedTocDigest ? { expectedTocDigest } : {}) });
    return { reader, reads: () => rr.reads, close: () => rr.close() };
  } catch (err) {
    await rr.close();
    throw err;
  }
}
