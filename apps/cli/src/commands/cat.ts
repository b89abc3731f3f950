import type { Writable } from "node:stream";
import type { Command } from "commander";
import { LazypullError } from "@lazypull/errors";
import { openTree, type TreeReader } from "../tree-source.js";

/** Follow symlinks inside the layer (absolute targets from the layer root), as `cat` in the container would. */
export function resolveInLayer(reader: TreeReader, path: string): string {
  let parts = path.split("/").filter((p) => p && p !== ".");
  for (let hops = 0, i = 0; i < parts.length; ) {
    const cur = parts.slice(0, i + 1).join("/");
    const node = reader.lookup(cur);
    if (node?.type === "symlink") {
      if (++hops > 40) throw new LazypullError("CLI_SYMLINK_LOOP", `${path}: too many levels of symbolic links`, { path });
      const target = node.linkName ?? "";
      const base = target.startsWith("/") ? [] : parts.slice(0, i);
      parts = [...base, ...target.split("/"), ...parts.slice(i + 1)].filter((p) => p && p !== ".");
      // resolve ".." lexically; it cannot climb above the layer root
      const out: string[] = [];
      for (const p of parts) (p === ".." ? out.pop() : out.push(p));
      parts = out;
      i = 0;
      continue;
    }
    i++;
  }
  return parts.join("/");
}

/** Stream a file of the layer to `out`, chunk by chunk, through range reads and digest checks. */
export async function catFile(reader: TreeReader, path: string, out: Writable): Promise<void> {
  const resolved = resolveInLayer(reader, path);
  const node = reader.lookup(resolved);
  if (!node) throw new LazypullError("ESTARGZ_NOT_FOUND", `${path}: no such file in the layer`, { path });
  if (node.type !== "reg") throw new LazypullError("ESTARGZ_NOT_A_FILE", `${path}: not a regular file (${node.type})`, { path });
  const step = 4 << 20;
  for (let off = 0; off < node.size; off += step) {
    const data = await reader.readFile(resolved, off, Math.min(step, node.size - off));
    if (!out.write(data)) await new Promise((r) => out.once("drain", r));
  }
}

export function register(program: Command): void {
  program
    .command("cat")
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
