import type { Writable } from "node:stream";
import type { Command } from "commander";
import { regularFile } from "@lazypull/image";
import { openTree, type TreeReader } from "../tree-source.js";
import { withRegistryFlags } from "../registry.js";

/** Stream a file of the layer to `out`, chunk by chunk, through range reads and digest checks. */
export async function catFile(reader: TreeReader, path: string, out: Writable): Promise<void> {
  const node = regularFile(reader, path);
  const step = 4 << 20;
  for (let off = 0; off < node.size; off += step) {
    const data = await reader.readFile(node.path, off, Math.min(step, node.size - off));
    if (!out.write(data)) await new Promise((r) => out.once("drain", r));
  }
}

export function register(program: Command): void {
  withRegistryFlags(program.command("cat"))
    .description("print a file of a registry image or a local eStargz blob, fetching only the chunks it needs")
    .argument("<source>", "image reference in a registry, or a local eStargz blob file")
    .argument("<path>", "file inside the image or layer")
    .option("--platform <os/arch>", "platform to pick from a multi-platform image")
    .option("--stats", "print the requests and bytes it took on stderr")
    .action(async (blob: string, path: string, opts: { platform?: string; stats?: boolean }) => {
      // a closed pipe (`| head`) is the reader's choice, not an error
      process.stdout.on("error", (err: NodeJS.ErrnoException) => {
        if (err.code === "EPIPE") process.exit(0);
      });
      const b = await openTree(blob, opts);
      try {
        await catFile(b.reader, path, process.stdout);
        if (opts.stats) process.stderr.write(`lazypull: ${b.describeCost()}\n`);
      } finally {
        await b.close();
      }
    });
}
