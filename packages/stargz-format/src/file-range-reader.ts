import { open } from "node:fs/promises";
import type { RangeReader } from "./types.js";

/** A RangeReader over a local file (the CLI's local mode, tests). Counts reads so callers can check. */
export async function fileRangeReader(path: string): Promise<RangeReader & { close(): Promise<void>; readonly reads: number }> {
  const fh = await open(path, "r");
  const { size } = await fh.stat();
  let reads = 0;
  return {
    size,
    get reads() {
      return reads;
    },
    async read(offset: number, length: number): Promise<Buffer> {
      reads++;
      const want = Math.max(0, Math.min(length, size - offset));
      const out = Buffer.allocUnsafe(want);
      let got = 0;
      while (got < want) {
        const { bytesRead } = await fh.read(out, got, want - got, offset + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return got === want ? out : out.subarray(0, got);
    },
    close: () => fh.close(),
  };
}
