import { createReadStream, createWriteStream } from "node:fs";
import { readFile, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, resolve } from "node:path";
import { sweepDeadPidEntries } from "@lazypull/host";
import { convertToEstargz, type ConvertResultDetail } from "@lazypull/stargz-format";
import { ProgressBar, formatBytes } from "./ui/progress.js";

export interface LocalConvertOptions {
  chunkSize?: number;
  level?: number;
  /** file listing paths to put first, one per line (`#` comments allowed) */
  prioritizeFile?: string;
  progress?: boolean;
}

/** Paths from a prioritisation list: one per line, blank lines and `#` comments ignored. */
export async function readPrioritizeFile(path: string): Promise<string[]> {
  return (await readFile(path, "utf8"))
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
}

/** Convert a local tar / tar.gz / tar.zst into an eStargz blob file (written atomically). */
export async function convertLocalFile(input: string, output: string, opts: LocalConvertOptions = {}): Promise<ConvertResultDetail> {
  const total = (await stat(input)).size;
  const prioritizedFiles = opts.prioritizeFile ? await readPrioritizeFile(opts.prioritizeFile) : undefined;
  const src = createReadStream(input, { highWaterMark: 1 << 20 });
  const tmp = `${output}.partial-${process.pid}`;
  // what a killed conversion to the same output left behind (a blob's worth of bytes each)
  const partial = `${basename(output)}.partial-`;
  await sweepDeadPidEntries(dirname(resolve(output)), (name) => (name.startsWith(partial) ? Number(name.slice(partial.length)) || undefined : undefined));
  const bar = new ProgressBar("convert", process.stderr, Boolean(opts.progress) && Boolean(process.stderr.isTTY) && !process.env.CI);
  const timer = setInterval(() => bar.update(src.bytesRead, total), 100);
  try {
    const result = await convertToEstargz(src, createWriteStream(tmp), {
      ...(opts.chunkSize !== undefined ? { chunkSize: opts.chunkSize } : {}),
      ...(opts.level !== undefined ? { level: opts.level } : {}),
      ...(prioritizedFiles ? { prioritizedFiles } : {}),
    });
    await rename(tmp, output);
    bar.update(total, total);
    bar.finish(`${formatBytes(total)} → ${formatBytes(result.blobSize)}`);
    return result;
  } catch (err) {
    src.destroy();
    await rm(tmp, { force: true });
    throw err;
  } finally {
    clearInterval(timer);
  }
}
