import { describe, expect, it } from "vitest";
import { buildTree, buildTreeYielding, TREE_SLICE_ENTRIES } from "./tree.js";
import type { TocEntry } from "./types.js";

/** A TOC of `dirs` directories with `files` files each, a symlink and a hardlink at the end. */
function entries(dirs: number, files: number): TocEntry[] {
  const out: TocEntry[] = [{ name: "./", type: "dir", mode: 0o755 }];
  let offset = 0;
  for (let d = 0; d < dirs; d++) {
    out.push({ name: `usr/share/d${d}/`, type: "dir", mode: 0o755, modtime: "2024-05-01T10:00:00Z" });
    for (let f = 0; f < files; f++) {
      out.push({ name: `usr/share/d${d}/f${f}`, type: "reg", size: 10, mode: 0o644, offset, chunkDigest: `sha256:${String(f).padStart(64, "0")}` });
      offset += 100;
    }
  }
  out.push({ name: "usr/share/link", type: "symlink", linkName: "d0/f0" });
  out.push({ name: "usr/share/hard", type: "hardlink", linkName: "usr/share/d0/f1" });
  return out;
}

const copy = (e: TocEntry[]) => e.map((x) => ({ ...x }));

describe("buildTreeYielding", () => {
  it("builds the same tree as buildTree", async () => {
    const toc = entries(30, 100);
    const oneGo = buildTree(copy(toc), 1e9, "test");
    const stretched = await buildTreeYielding(copy(toc), 1e9, "test");
    expect([...stretched.byPath.keys()]).toEqual([...oneGo.byPath.keys()]);
    for (const [path, node] of oneGo.byPath) {
      const other = stretched.byPath.get(path)!;
      expect({ ...other, names: other.names, chunks: other.chunks }).toEqual({ ...node, names: node.names, chunks: node.chunks });
    }
    expect(stretched.ordered).toEqual(oneGo.ordered);
    expect(stretched.byPath.get("usr/share/hard")).toBe(stretched.byPath.get("usr/share/d0/f1"));
  });

  it("lets the event loop through between stretches of entries", async () => {
    const toc = entries(30, 100); // ~3,000 entries: three stretches
    expect(toc.length).toBeGreaterThan(2 * TREE_SLICE_ENTRIES);
    const immediate = new Promise<void>((resolve) => setImmediate(resolve));
    let builtFirst = false;
    const building = buildTreeYielding(toc, 1e9, "test").then(() => (builtFirst = true));
    // a callback queued before the build runs before the build is done, not after it
    await immediate;
    expect(builtFirst).toBe(false);
    await building;
    expect(builtFirst).toBe(true);
  });

  it("refuses a bad entry the way buildTree does, wherever it lies", async () => {
    const toc = entries(30, 100);
    toc[2 * TREE_SLICE_ENTRIES + 5] = { name: "../escape", type: "reg", size: 1, offset: 0 };
    expect(() => buildTree(copy(toc), 1e9, "test")).toThrow(expect.objectContaining({ code: "ESTARGZ_UNSAFE_NAME" }));
    await expect(buildTreeYielding(copy(toc), 1e9, "test")).rejects.toMatchObject({ code: "ESTARGZ_UNSAFE_NAME" });
  });
});
