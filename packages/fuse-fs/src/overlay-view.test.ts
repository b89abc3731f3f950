import { describe, expect, it } from "vitest";
import { MemoryTree } from "./layer/memory-tree.js";
import { isOpaqueDir, overlayLookup, overlayReaddir, overlayXattrs } from "./overlay-view.js";

const base = { uid: 0, gid: 0, size: 0, mtimeMs: 1_700_000_000_000, xattrs: {} };

function tree(): MemoryTree {
  const t = new MemoryTree("sha256:view");
  t.add("etc", { ...base, type: "dir", mode: 0o755 });
  t.add("etc/.wh.motd", { ...base, type: "reg", mode: 0o600, uid: 7, gid: 8 });
  t.add("etc/hosts", { ...base, type: "reg", mode: 0o644, size: 3, xattrs: { "trusted.overlay.redirect": Buffer.from("/x"), "user.keep": Buffer.from("1") } });
  t.add("var/cache/.wh..wh..opq", { ...base, type: "reg", mode: 0o644 });
  t.add("var/cache/new", { ...base, type: "reg", mode: 0o644 });
  t.add("var/.wh..wh.plnk", { ...base, type: "dir", mode: 0o700 });
  // the same layer whites out `srv` and creates it again: the new `srv` wins and hides what lay below
  t.add(".wh.srv", { ...base, type: "reg", mode: 0o644 });
  t.add("srv/a", { ...base, type: "reg", mode: 0o644 });
  t.add(".wh.", { ...base, type: "reg", mode: 0o644 });
  return t;
}

describe("overlay view", () => {
  it("should present an OCI whiteout as a 0/0 character device with the whiteout's owner and mode", () => {
    const node = overlayLookup(tree(), "etc/motd");
    expect(node).toMatchObject({ path: "etc/motd", type: "char", devMajor: 0, devMinor: 0, mode: 0o600, uid: 7, gid: 8, size: 0 });
  });

  it("should hide every .wh. name and list whiteouts under the names they hide", () => {
    const t = tree();
    expect(overlayLookup(t, "etc/.wh.motd")).toBeUndefined();
    expect(overlayLookup(t, "var/cache/.wh..wh..opq")).toBeUndefined();
    expect(overlayReaddir(t, "etc")).toEqual(["hosts", "motd"]);
    expect(overlayReaddir(t, "var")).toEqual(["cache"]);
    expect(overlayReaddir(t, "var/cache")).toEqual(["new"]);
    expect(overlayReaddir(t, "")).toEqual(["etc", "srv", "var"]);
    expect(overlayReaddir(t, "etc/hosts")).toBeUndefined();
  });

  it("should let a real entry win over its whiteout in the same layer, and make such a directory opaque", () => {
    const t = tree();
    expect(overlayLookup(t, "srv")?.type).toBe("dir");
    expect(isOpaqueDir(t, "srv", overlayLookup(t, "srv")!)).toBe(true);
    expect(isOpaqueDir(t, "etc", overlayLookup(t, "etc")!)).toBe(false);
  });

  it("should answer the opaque xattrs on marked directories and drop overlay xattrs an image carries", () => {
    const t = tree();
    const cache = overlayXattrs(t, "var/cache", overlayLookup(t, "var/cache")!);
    expect(Object.fromEntries(Object.entries(cache).map(([k, v]) => [k, v.toString()]))).toEqual({
      "trusted.overlay.opaque": "y",
      "user.overlay.opaque": "y",
    });
    const hosts = overlayXattrs(t, "etc/hosts", overlayLookup(t, "etc/hosts")!);
    expect(Object.keys(hosts)).toEqual(["user.keep"]);
    expect(overlayXattrs(t, "", overlayLookup(t, "")!)).toEqual({});
  });

  it("should not invent nodes for names that are neither present nor whited out", () => {
    expect(overlayLookup(tree(), "etc/passwd")).toBeUndefined();
    expect(overlayLookup(tree(), "nope/x")).toBeUndefined();
  });
});
