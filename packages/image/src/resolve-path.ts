import type { FileNode } from "@lazypull/stargz-format";
import { ImageError } from "./errors.js";

/** As Linux's MAXSYMLINKS: more hops than this is a loop (or as good as one). */
export const MAX_SYMLINK_HOPS = 40;

/**
 * Follows symlinks inside an image (or layer) tree the way a process in the container would: absolute
 * targets from the tree's root, `..` resolved lexically and never above the root. Returns the
 * image-relative path of what `path` names.
 */
export function resolveSymlinks(tree: { lookup(path: string): FileNode | undefined }, path: string): string {
  const split = (p: string) => p.split("/").filter((c) => c && c !== ".");
  // components still to walk, and the symlink-free path walked so far (so ".." is just a pop)
  const pending = split(path);
  let done: string[] = [];
  let hops = 0;
  while (pending.length > 0) {
    const name = pending.shift()!;
    if (name === "..") {
      done.pop();
      continue;
    }
    const node = tree.lookup([...done, name].join("/"));
    if (node?.type !== "symlink") {
      done.push(name);
      continue;
    }
    if (++hops > MAX_SYMLINK_HOPS) throw new ImageError("IMAGE_SYMLINK_LOOP", `${path}: too many levels of symbolic links`, { path });
    const target = node.linkName ?? "";
    if (target.startsWith("/")) done = [];
    pending.unshift(...split(target));
  }
  return done.join("/");
}

/** The regular file `path` names (symlinks followed), or a typed error saying why there is none. */
export function regularFile(tree: { lookup(path: string): FileNode | undefined }, path: string): FileNode {
  const resolved = resolveSymlinks(tree, path);
  const node = tree.lookup(resolved);
  if (!node) throw new ImageError("IMAGE_PATH_NOT_FOUND", `${path}: no such file`, { path });
  if (node.type !== "reg") throw new ImageError("IMAGE_NOT_A_FILE", `${path}: not a regular file (${node.type})`, { path, type: node.type });
  return node;
}
