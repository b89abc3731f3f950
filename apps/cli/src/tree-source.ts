import { existsSync } from "node:fs";
import type { StargzReader } from "@lazypull/stargz-format";
import { openLocalBlob } from "./local-blob.js";
import { openImageView } from "./image-view.js";
import { formatBytes } from "./ui/progress.js";

/** What `ls` and `cat` need of a file tree: a local blob's reader or a remote image's merged view. */
export type TreeReader = Pick<StargzReader, "lookup" | "readdir" | "walk" | "readFile">;

export interface OpenedTree {
  reader: TreeReader;
  /** one line on the network cost so far, for `--stats` */
  describeCost(): string;
  close(): Promise<void>;
}

/** An existing local file is an eStargz blob; anything else is an image reference in a registry. */
export async function openTree(arg: string, opts: { platform?: string; allowUnverified?: boolean } = {}): Promise<OpenedTree> {
  if (existsSync(arg)) {
    const b = await openLocalBlob(arg);
    return { reader: b.reader, describeCost: () => `${b.reads()} range reads of ${arg}`, close: () => b.close() };
  }
  const img = await openImageView(arg, opts);
  return {
    reader: img.view,
    describeCost: () => {
      const s = img.client.stats();
      return `${s.requests} HTTP requests (manifest, config, TOCs and data), ${formatBytes(s.bytesReceived)} received`;
    },
    close: img.close,
  };
}
