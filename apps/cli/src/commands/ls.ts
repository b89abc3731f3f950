import type { Command } from "commander";
import { ImageError } from "@lazypull/image";
import type { FileNode } from "@lazypull/stargz-format";
import { openTree, type TreeReader } from "../tree-source.js";
import { withRegistryFlags } from "../registry.js";

const TYPE_CHAR: Record<FileNode["type"], string> = { dir: "d", reg: "-", symlink: "l", char: "c", block: "b", fifo: "p" };

export function modeString(n: FileNode): string {
  const m = n.mode;
  const rwx = (shift: number, special: number, ch: string): string =>
    (m & (4 << shift) ? "r" : "-") +
    (m & (2 << shift) ? "w" : "-") +
    (m & special ? (m & (1 << shift) ? ch : ch.toUpperCase()) : m & (1 << shift) ? "x" : "-");
  return TYPE_CHAR[n.type] + rwx(6, 0o4000, "s") + rwx(3, 0o2000, "s") + rwx(0, 0o1000, "t");
}

export function formatLine(n: FileNode, name: string): string {
  const size = n.type === "char" || n.type === "block" ? `${n.devMajor ?? 0},${n.devMinor ?? 0}` : String(n.size);
  const when = new Date(n.mtimeMs).toISOString().replace("T", " ").slice(0, 16);
  const link = n.type === "symlink" ? ` -> ${n.linkName}` : "";
  return `${modeString(n)} ${String(n.nlink).padStart(3)} ${`${n.uid}/${n.gid}`.padEnd(11)} ${size.padStart(10)} ${when} ${name}${link}`;
}

/** The nodes `ls` shows for PATH: a directory's children (or every node with `recursive`), or the file itself. */
export function listNodes(reader: TreeReader, path: string, recursive = false): Array<{ name: string; node: FileNode }> {
  const node = reader.lookup(path);
  if (!node) throw new ImageError("IMAGE_PATH_NOT_FOUND", `${path}: no such file or directory`, { path });
  if (node.type !== "dir") return [{ name: node.path, node }];
  if (recursive) {
    const prefix = node.path ? `${node.path}/` : "";
    return [...reader.walk()].filter((n) => n.path.startsWith(prefix) && n.path !== node.path).map((n) => ({ name: n.path, node: n }));
  }
  return (reader.readdir(node.path) ?? []).map((name) => ({ name, node: reader.lookup(node.path ? `${node.path}/${name}` : name)! }));
}

export function register(program: Command): void {
  withRegistryFlags(program.command("ls"))
    .description("list a directory of a registry image or a local eStargz blob, from the TOCs alone (no file data is read)")
    .argument("<source>", "image reference in a registry, or a local eStargz blob file")
    .argument("[path]", "directory or file inside the layer", "/")
    .option("-R, --recursive", "list everything below PATH")
    .option("--json", "print the file nodes as JSON")
    .option("--platform <os/arch>", "platform to pick from a multi-platform image")
    .option("--stats", "print the requests and bytes it took on stderr")
    .action(async (blob: string, path: string, opts: { recursive?: boolean; json?: boolean; platform?: string; stats?: boolean }) => {
      const b = await openTree(blob, opts);
      try {
        const rows = listNodes(b.reader, path, opts.recursive);
        if (opts.json) {
          const out = rows.map(({ node }) => ({ ...node, xattrs: Object.fromEntries(Object.entries(node.xattrs).map(([k, v]) => [k, v.toString("base64")])) }));
          process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
        } else {
          process.stdout.write(rows.map((r) => `${formatLine(r.node, r.name)}\n`).join(""));
        }
        if (opts.stats) process.stderr.write(`lazypull: ${b.describeCost()}\n`);
      } finally {
        await b.close();
      }
    });
}
