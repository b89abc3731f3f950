import type { FileNode } from "@lazypull/stargz-format";
import { FuseFsError } from "../errors.js";
import { normalisePath } from "./layer.js";

/** A layer tree built entry by entry (from a plain tar), with implicit parents and hardlinks. */
export class MemoryTree {
  private readonly nodes = new Map<string, FileNode>();
  private readonly children = new Map<string, Set<string>>();
  /** for a hardlink name, the path that owns the content */
  private readonly contentOwner = new Map<string, string>();
  private nextIno = 1;

  constructor(private readonly label: string) {
    this.put("", { type: "dir", mode: 0o755, uid: 0, gid: 0, size: 0, mtimeMs: 0, xattrs: {} });
  }

  lookup(path: string): FileNode | undefined {
    return this.nodes.get(normalisePath(path));
  }

  readdir(path: string): string[] | undefined {
    const p = normalisePath(path);
    if (this.nodes.get(p)?.type !== "dir") return undefined;
    return [...(this.children.get(p) ?? [])].sort();
  }

  *walk(): Iterable<FileNode> {
    const stack = [""];
    while (stack.length) {
      const p = stack.pop()!;
      const n = this.nodes.get(p);
      if (!n) continue;
      yield n;
      for (const c of [...(this.children.get(p) ?? [])].sort().reverse()) stack.push(p ? `${p}/${c}` : c);
    }
  }

  get size(): number {
    return this.nodes.size;
  }

  /** the path whose content a name serves (itself, or a hardlink's target) */
  owner(path: string): string {
    const p = normalisePath(path);
    return this.contentOwner.get(p) ?? p;
  }

  add(rawPath: string, node: Omit<FileNode, "path" | "ino" | "nlink">): void {
    this.put(this.checked(rawPath), node);
  }

  link(rawPath: string, rawTarget: string): void {
    const p = this.checked(rawPath);
    const t = this.checked(rawTarget);
    const target = this.nodes.get(t);
    if (!target || target.type !== "reg") {
      throw new FuseFsError("FUSEFS_BAD_LAYER", `hardlink ${p} points at ${t}, which is not a regular file before it`, {
        digest: this.label,
        path: p,
      });
    }
    this.ensureParents(p);
    target.nlink += 1;
    this.nodes.set(p, target);
    this.contentOwner.set(p, this.owner(t));
    this.attach(p);
  }

  private checked(raw: string): string {
    const p = normalisePath(raw);
    if (p.split("/").some((s) => s === ".." || s === "")) {
      if (p !== "") throw new FuseFsError("FUSEFS_BAD_LAYER", `unsafe entry name ${raw}`, { digest: this.label, path: raw });
    }
    return p;
  }

  private put(p: string, node: Omit<FileNode, "path" | "ino" | "nlink">): void {
    this.ensureParents(p);
    const old = this.nodes.get(p);
    // a later entry replaces an earlier one (tar semantics); a directory keeps its children
    const ino = old && old.type === node.type && node.type === "dir" ? old.ino : this.nextIno++;
    this.nodes.set(p, { ...node, path: p, ino, nlink: node.type === "dir" ? 2 : 1 });
    this.contentOwner.delete(p);
    this.attach(p);
  }

  private ensureParents(p: string): void {
    if (p === "") return;
    const parent = p.includes("/") ? p.slice(0, p.lastIndexOf("/")) : "";
    if (!this.nodes.has(parent)) this.put(parent, { type: "dir", mode: 0o755, uid: 0, gid: 0, size: 0, mtimeMs: 0, xattrs: {} });
  }

  private attach(p: string): void {
    if (p === "") return;
    const i = p.lastIndexOf("/");
    const parent = i < 0 ? "" : p.slice(0, i);
    const name = i < 0 ? p : p.slice(i + 1);
    let set = this.children.get(parent);
    if (!set) this.children.set(parent, (set = new Set()));
    set.add(name);
  }
}
