import { describe, expect, it } from "vitest";
import type { FileNode } from "@lazypull/stargz-format";
import { regularFile, resolveSymlinks } from "./resolve-path.js";

/** paths → file contents, `{ link }` for a symlink, "dir" for a directory */
function tree(entries: Record<string, string | { link: string }>) {
  const nodes = new Map<string, FileNode>();
  let ino = 1;
  const all: Record<string, string | { link: string }> = { "": "dir", ...entries };
  for (const [path, e] of Object.entries(all)) {
    const base = { path, mode: 0o755, uid: 0, gid: 0, mtimeMs: 0, xattrs: {}, nlink: 1, ino: ino++ };
    if (e === "dir") nodes.set(path, { ...base, type: "dir", size: 0 });
    else if (typeof e === "string") nodes.set(path, { ...base, type: "reg", size: e.length });
    else nodes.set(path, { ...base, type: "symlink", size: e.link.length, linkName: e.link });
  }
  return { lookup: (p: string) => nodes.get(p) };
}

const t = tree({
  bin: { link: "usr/bin" },
  usr: "dir",
  "usr/bin": "dir",
  "usr/bin/sh": { link: "dash" },
  "usr/bin/dash": "#!",
  "usr/lib": { link: "../../../../lib" },
  lib: "dir",
  "lib/libc.so": "elf",
  etc: "dir",
  "etc/abs": { link: "/usr/bin/dash" },
  "etc/loop": { link: "loop" },
});

describe("resolveSymlinks", () => {
  it("should follow relative, absolute and intermediate symlinks as the container would", () => {
    expect(resolveSymlinks(t, "/bin/sh")).toBe("usr/bin/dash");
    expect(resolveSymlinks(t, "etc/abs")).toBe("usr/bin/dash");
    expect(resolveSymlinks(t, "./usr/bin/../bin/dash")).toBe("usr/bin/dash");
  });

  it("should never climb above the root with ..", () => {
    expect(resolveSymlinks(t, "usr/lib/libc.so")).toBe("lib/libc.so");
  });

  it("should refuse a symlink loop with IMAGE_SYMLINK_LOOP", () => {
    expect(() => resolveSymlinks(t, "etc/loop")).toThrow(expect.objectContaining({ code: "IMAGE_SYMLINK_LOOP" }));
  });
});

describe("regularFile", () => {
  it("should give the file a path names, or say why there is none", () => {
    expect(regularFile(t, "bin/sh").path).toBe("usr/bin/dash");
    expect(() => regularFile(t, "nope")).toThrow(expect.objectContaining({ code: "IMAGE_PATH_NOT_FOUND" }));
    expect(() => regularFile(t, "bin")).toThrow(expect.objectContaining({ code: "IMAGE_NOT_A_FILE", context: { path: "bin", type: "dir" } }));
  });
});
