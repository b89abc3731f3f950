/**
 * A layer as kernel overlayfs stores one (Documentation/filesystems/overlayfs.rst): an OCI whiteout
 * `.wh.NAME` is a character device 0/0 named `NAME`; a directory holding `.wh..wh..opq` is opaque
 * (`trusted.overlay.opaque` = `y`, and `user.overlay.opaque` for `userxattr` mounts) and does not list
 * the marker. Everything else is the OCI tree unchanged, so this is a thin translation of names.
 */
import type { FileNode } from "@lazypull/stargz-format";

export const WHITEOUT_PREFIX = ".wh.";
export const OPAQUE_MARKER = ".wh..wh..opq";
/** `.wh..wh.*` names are the OCI spec's (and aufs') metadata, never whiteouts of a `.wh.*` file */
const META_PREFIX = ".wh..wh.";
const OPAQUE_XATTRS = ["trusted.overlay.opaque", "user.overlay.opaque"] as const;
const YES = Buffer.from("y");
/**
 * Overlay's own xattrs steer the kernel (redirects, metacopy, origin file handles): an image must not
 * be able to set them on a lower, so the overlay view drops any the TOC carries and serves only ours.
 */
const OVERLAY_XATTR = /^(?:trusted|user)\.overlay\./;

/** The part of a layer the view reads: a tree by layer path ("" is the root). */
export interface LayerTree {
  lookup(path: string): FileNode | undefined;
  readdir(path: string): string[] | undefined;
}

function split(path: string): { parent: string; name: string } {
  const i = path.lastIndexOf("/");
  return i < 0 ? { parent: "", name: path } : { parent: path.slice(0, i), name: path.slice(i + 1) };
}

const join = (parent: string, name: string) => (parent ? `${parent}/${name}` : name);

/**
 * The node at `path` as overlayfs should see it. A whiteout named by the OCI spec becomes a 0/0
 * character device; a real entry of the same name in the same layer wins over its whiteout (the spec:
 * a whiteout only hides what lies in lower layers).
 */
export function overlayLookup(layer: LayerTree, path: string): FileNode | undefined {
  if (path === "") return layer.lookup(path);
  const { parent, name } = split(path);
  if (name.startsWith(WHITEOUT_PREFIX)) return undefined;
  const node = layer.lookup(path);
  if (node) return node;
  const wh = layer.lookup(join(parent, WHITEOUT_PREFIX + name));
  if (!wh) return undefined;
  return {
    path,
    type: "char",
    mode: wh.mode & 0o7777,
    uid: wh.uid,
    gid: wh.gid,
    size: 0,
    mtimeMs: wh.mtimeMs,
    devMajor: 0,
    devMinor: 0,
    xattrs: {},
    nlink: 1,
    ino: wh.ino,
  };
}

/** Child names of a directory with whiteouts renamed to what they hide and metadata names dropped. */
export function overlayReaddir(layer: LayerTree, path: string): string[] | undefined {
  const names = layer.readdir(path);
  if (!names) return undefined;
  const out = new Set<string>();
  for (const n of names) {
    if (n.startsWith(META_PREFIX)) continue;
    if (n.startsWith(WHITEOUT_PREFIX)) {
      const hidden = n.slice(WHITEOUT_PREFIX.length);
      if (hidden !== "" && hidden !== "." && hidden !== "..") out.add(hidden);
    } else {
      out.add(n);
    }
  }
  return [...out].sort();
}

/**
 * A directory is opaque when it holds the marker, or when the same layer also whites out its name
 * (the layer deletes what lay below, then creates the directory afresh — what an applier does).
 */
export function isOpaqueDir(layer: LayerTree, path: string, node: FileNode): boolean {
  if (node.type !== "dir") return false;
  if (layer.lookup(join(path, OPAQUE_MARKER))) return true;
  if (path === "") return false;
  const { parent, name } = split(path);
  return layer.lookup(join(parent, WHITEOUT_PREFIX + name)) !== undefined;
}

/** The node's xattrs in the overlay view: the image's own minus overlay's namespace, plus opacity. */
export function overlayXattrs(layer: LayerTree, path: string, node: FileNode): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries(node.xattrs)) if (!OVERLAY_XATTR.test(k)) out[k] = v;
  if (isOpaqueDir(layer, path, node)) for (const k of OPAQUE_XATTRS) out[k] = YES;
  return out;
}
