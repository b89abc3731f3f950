import { describe, expect, it } from "vitest";
import type { FileNode } from "@lazypull/stargz-format";
import { ImageView, type LayerTree } from "./merged-view.js";

/** A tiny in-memory layer: paths → contents (a trailing "/" makes a directory). */
export function fakeLayer(files: Record<string, string>): LayerTree {
  const nodes = new Map<string, FileNode & { data: string }>();
  const add = (path: string, type: "dir" | "reg", data = "") =>
    nodes.set(path, { path, type, mode: 0o644, uid: 0, gid: 0, size: data.length, mtimeMs: 0, xattrs: {}, nlink: 1, ino: nodes.size + 1, data });
  add("", "dir");
  for (const [p, data] of Object.entries(files)) {
    const path = p.replace(/\/$/, "");
    const parts = path.split("/");
    for (let i = 1; i < parts.length; i++) if (!nodes.has(parts.slice(0, i).join("/"))) add(parts.slice(0, i).join("/"), "dir");
    add(path, p.endsWith("/") ? "dir" : "reg", data);
  }
  return {
    lookup: (p) => nodes.get(p),
    readdir: (p) => {
      if (nodes.get(p)?.type !== "dir") return undefined;
      const prefix = p ? `${p}/` : "";
      return [...nodes.keys()].filter((k) => k.startsWith(prefix) && k !== p && !k.slice(prefix.length).includes("/")).map((k) => k.slice(prefix.length)).sort();
    },
    read: async (p, offset = 0, length) => Buffer.from(nodes.get(p)!.data.slice(offset, length === undefined ? undefined : offset + length)),
    progress: () => ({ bytesFetched: 0, requests: 0 }),
  };
}

const bottom = fakeLayer({
  "etc/issue": "Debian\n",
  "etc/os-release": "ID=debian\n",
  "usr/share/doc/bash/README": "bash docs\n",
  "usr/share/doc/bash/COPYING": "GPL\n",
  "var/gone/file": "x",
});
const top = fakeLayer({
  "etc/.wh.issue": "",
  "etc/added": "new\n",
  "etc/os-release": "ID=lazy\n",
  "usr/share/doc/bash/.wh..wh..opq": "",
  "usr/share/doc/bash/only-me": "opaque\n",
  "var/.wh.gone": "",
});
const view = new ImageView([top, bottom]);

describe("ImageView", () => {
  it("should have a root even with no layers (an empty image is still a root)", () => {
    const view = new ImageView([]);
    expect(view.lookup("/")?.type).toBe("dir");
    expect(view.readdir("/")).toEqual([]);
    expect(view.lookup("/etc")).toBeUndefined();
  });

  it("should apply whiteouts and opaque directories across layers", () => {
    expect(view.readdir("etc")).toEqual(["added", "os-release"]);
    expect(view.readdir("/usr/share/doc/bash")).toEqual(["only-me"]);
    expect(view.readdir("var")).toEqual([]);
    expect(view.lookup("etc/issue")).toBeUndefined();
    expect(view.lookup("var/gone/file")).toBeUndefined();
    expect(view.lookup("usr/share/doc/bash/README")).toBeUndefined();
    expect(view.lookup("./usr/share/doc/bash")?.type).toBe("dir");
  });

  it("should read a file from the top-most layer that has it", async () => {
    expect((await view.readFile("/etc/os-release")).toString()).toBe("ID=lazy\n");
    expect((await view.readFile("usr/share/doc/bash/only-me", 1, 3)).toString()).toBe("paq");
    await expect(view.readFile("etc/issue")).rejects.toMatchObject({ code: "IMAGE_PATH_NOT_FOUND" });
  });

  it("should walk the merged tree parents first", () => {
    const paths = [...view.walk()].map((n) => n.path);
    expect(paths).toEqual([
      "",
      "etc",
      "etc/added",
      "etc/os-release",
      "usr",
      "usr/share",
      "usr/share/doc",
      "usr/share/doc/bash",
      "usr/share/doc/bash/only-me",
      "var",
    ]);
  });
});
