import type { FileNode } from "@lazypull/stargz-format";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { AccessRecorder } from "../access-log.js";
import { FsCore, makedev } from "../fs-core.js";
import type { ServedLayer } from "../layer/layer.js";
import { MemoryTree } from "../layer/memory-tree.js";
import { FuseFsError } from "../errors.js";
import { createOperations } from "./index.js";
import { Errno } from "./errno.js";

const base = { uid: 0, gid: 0, size: 0, mtimeMs: 1_700_000_000_000, xattrs: {} };

function fakeLayer(): ServedLayer & { reads: string[] } {
  const t = new MemoryTree("sha256:test");
  t.add("bin", { ...base, type: "dir", mode: 0o755 });
  t.add("bin/su", { ...base, type: "reg", mode: 0o4755, size: 11, uid: 3, gid: 4 });
  t.link("bin/su2", "bin/su");
  t.add("tmp", { ...base, type: "dir", mode: 0o1777 });
  t.add("dev/null", { ...base, type: "char", mode: 0o666, devMajor: 1, devMinor: 3 });
  t.add("link", { ...base, type: "symlink", mode: 0o777, linkName: "bin/su" });
  t.add("cap", { ...base, type: "reg", mode: 0o644, xattrs: { "user.a": Buffer.from("b") } });
  t.add("old/.wh..wh..opq", { ...base, type: "reg", mode: 0o644 });
  t.add("old/.wh.gone", { ...base, type: "reg", mode: 0o644 });
  t.add("old/data", { ...base, type: "reg", mode: 0o644 });
  const reads: string[] = [];
  return {
    reads,
    digest: "sha256:test",
    kind: "whole",
    lookup: (p) => t.lookup(p),
    readdir: (p) => t.readdir(p),
    walk: () => t.walk(),
    nodeCount: t.size,
    async read(path, offset, length, hint) {
      reads.push(`${path}@${offset}+${length}${hint?.sequential ? " seq" : ""}`);
      if (path === "cap") throw new FuseFsError("FUSEFS_FETCH_FAILED", "registry down", {});
      return Buffer.from("hello world").subarray(offset, offset + length);
    },
    startBackground() {},
    prefetchFiles: () => Promise.resolve(),
    flush: () => Promise.resolve(),
    progress: () => ({ digest: "sha256:test", state: "complete", kind: "whole", bytesFetched: 0, bytesTotal: 8192, requests: 0, errors: 0 }),
    close() {},
  };
}

function setup(onFirstRead?: (layer: string, path: string) => void) {
  const recorder = new AccessRecorder();
  const core = new FsCore(recorder, onFirstRead);
  const layer = fakeLayer();
  core.layers.set("abc", { hex: "abc", slot: 2, layer });
  const ops = createOperations(core, pino({ level: "silent" }));
  const call = <T extends unknown[]>(fn: (...a: never[]) => void, ...args: unknown[]) =>
    new Promise<T>((resolve) => (fn as (...a: unknown[]) => void)(...args, (...res: unknown[]) => resolve(res as T)));
  return { core, ops, layer, recorder, call };
}

describe("FUSE operations", () => {
  it("should list the layer directories at the root", async () => {
    const { ops, call } = setup();
    const [err, names, stats] = await call<[number, string[], { mode: number }[]]>(ops.readdir, "/");
    expect([err, names]).toEqual([0, ["abc", "abc.overlay"]]);
    expect(stats.map((s) => s.mode & 0o170000)).toEqual([0o040000, 0o040000]);
    expect((await call(ops.readdir, "/abc")).slice(0, 2)).toEqual([0, ["bin", "cap", "dev", "link", "old", "tmp"]]);
    expect(await call(ops.readdir, "/abc/bin/su")).toEqual([Errno.ENOTDIR]);
  });

  it("should give readdir each entry's type, so overlayfs can see whiteouts without a lookup", async () => {
    const { ops, call } = setup();
    const [, names, stats] = await call<[number, string[], { mode: number; ino: number }[]]>(ops.readdir, "/abc");
    const types = Object.fromEntries(names.map((n, i) => [n, stats[i]!.mode & 0o170000]));
    expect(types).toEqual({ bin: 0o040000, cap: 0o100000, dev: 0o040000, link: 0o120000, old: 0o040000, tmp: 0o040000 });
  });

  it("should serve the overlay view beside the OCI view and count every operation", async () => {
    const { core, ops, call } = setup();
    const before = core.opCount;
    expect((await call(ops.readdir, "/abc.overlay/old")).slice(0, 2)).toEqual([0, ["data", "gone"]]);
    expect((await call(ops.readdir, "/abc/old")).slice(0, 2)).toEqual([0, [".wh..wh..opq", ".wh.gone", "data"]]);
    const [, wh] = await call<[number, { mode: number; rdev: number }]>(ops.getattr, "/abc.overlay/old/gone");
    expect([wh.mode & 0o170000, wh.rdev]).toEqual([0o020000, 0]);
    expect(await call(ops.getattr, "/abc.overlay/old/.wh.gone")).toEqual([Errno.ENOENT]);
    const [, opq] = await call<[number, Buffer]>(ops.getxattr, "/abc.overlay/old", "trusted.overlay.opaque", 0);
    expect(opq.toString()).toBe("y");
    expect(await call(ops.getxattr, "/abc/old", "trusted.overlay.opaque", 0)).toEqual([Errno.ENODATA]);
    expect(core.opCount - before).toBe(6);
  });

  it("should report full modes, owners, link counts, inodes and device numbers", async () => {
    const { ops, call } = setup();
    const [, su] = await call<[number, { mode: number; uid: number; gid: number; nlink: number; ino: number; size: number }]>(ops.getattr, "/abc/bin/su");
    const [, su2] = await call<[number, { ino: number }]>(ops.getattr, "/abc/bin/su2");
    expect({ mode: su.mode, uid: su.uid, gid: su.gid, nlink: su.nlink, size: su.size }).toEqual({ mode: 0o104755, uid: 3, gid: 4, nlink: 2, size: 11 });
    expect(su2.ino).toBe(su.ino);
    expect(su.ino >>> 24).toBe(2);
    const [, tmp] = await call<[number, { mode: number }]>(ops.getattr, "/abc/tmp");
    expect(tmp.mode).toBe(0o41777);
    const [, dev] = await call<[number, { mode: number; rdev: number }]>(ops.getattr, "/abc/dev/null");
    expect({ mode: dev.mode, rdev: dev.rdev }).toEqual({ mode: 0o20666, rdev: makedev(1, 3) });
    const [, link] = await call<[number, { mode: number; size: number }]>(ops.getattr, "/abc/link");
    expect({ mode: link.mode, size: link.size }).toEqual({ mode: 0o120777, size: 6 });
    expect(await call(ops.getattr, "/abc/missing")).toEqual([Errno.ENOENT]);
    expect(await call(ops.getattr, "/nolayer")).toEqual([Errno.ENOENT]);
  });

  it("should answer readlink, xattrs and access from the tree", async () => {
    const { ops, call } = setup();
    expect(await call(ops.readlink, "/abc/link")).toEqual([0, "bin/su"]);
    expect(await call(ops.readlink, "/abc/bin")).toEqual([Errno.EINVAL]);
    expect(await call(ops.listxattr, "/abc/cap")).toEqual([0, ["user.a"]]);
    expect(await call(ops.getxattr, "/abc/cap", "user.a", 0)).toEqual([0, Buffer.from("b")]);
    expect(await call(ops.getxattr, "/abc/cap", "user.nope", 0)).toEqual([Errno.ENODATA]);
    expect(await call(ops.access, "/abc/bin/su", 4)).toEqual([0]);
    expect(await call(ops.access, "/abc/bin/su", 2)).toEqual([Errno.EROFS]);
  });

  it("should refuse every write with EROFS, also opening for writing", async () => {
    const { ops, call } = setup();
    expect(await call(ops.open, "/abc/bin/su", 1)).toEqual([Errno.EROFS]);
    expect(await call(ops.open, "/abc/bin/su", 2)).toEqual([Errno.EROFS]);
    expect(await call(ops.mkdir, "/abc/new", 0o755)).toEqual([Errno.EROFS]);
    expect(await call(ops.unlink, "/abc/bin/su")).toEqual([Errno.EROFS]);
    expect(await call(ops.write, "/abc/bin/su", 1, Buffer.alloc(1), 1, 0)).toEqual([Errno.EROFS]);
    expect(await call(ops.setxattr, "/abc/cap", "user.x", Buffer.alloc(1), 0, 0)).toEqual([Errno.EROFS]);
  });

  it("should read through a handle, mark sequential reads, record first reads and map failures to EIO", async () => {
    const { ops, call, layer, recorder } = setup();
    const [err, fd] = await call<[number, number]>(ops.open, "/abc/bin/su2", 0);
    expect(err).toBe(0);
    const buf = Buffer.alloc(5);
    expect(await call(ops.read, "/abc/bin/su2", fd, buf, 5, 0)).toEqual([5]);
    expect(buf.toString()).toBe("hello");
    expect(await call(ops.read, "/abc/bin/su2", fd, buf, 5, 5)).toEqual([5]);
    expect(await call(ops.read, "/abc/bin/su2", fd, buf, 5, 1)).toEqual([5]);
    expect(await call(ops.release, "/abc/bin/su2", fd)).toEqual([0]);
    const [, fd2] = await call<[number, number]>(ops.open, "/abc/cap", 0);
    expect(await call(ops.read, "/abc/cap", fd2, buf, 5, 0)).toEqual([Errno.EIO]);
    expect(layer.reads).toEqual(["bin/su2@0+5 seq", "bin/su2@5+5 seq", "bin/su2@1+5", "cap@0+5 seq"]);
    expect(recorder.order).toEqual(["abc/bin/su2", "abc/cap"]);
  });

  it("should tell the first-read listener once per handle, and never fail a read for its throw", async () => {
    const heard: string[] = [];
    const { ops, call } = setup((layer, path) => {
      heard.push(`${layer} ${path}`);
      throw new Error("listener bug");
    });
    const [, fd] = await call<[number, number]>(ops.open, "/abc.overlay/bin/su2", 0);
    const buf = Buffer.alloc(5);
    expect(await call(ops.read, "/abc.overlay/bin/su2", fd, buf, 5, 0)).toEqual([5]);
    expect(await call(ops.read, "/abc.overlay/bin/su2", fd, buf, 5, 5)).toEqual([5]);
    expect(heard).toEqual(["sha256:test bin/su2"]);
  });

    it("should describe the filesystem as read-only in statfs", async () => {
    const { ops, call } = setup();
    const [err, st] = await call<[number, { flag: number; files: number; blocks: number; namemax: number }]>(ops.statfs, "/");
    expect({ err, flag: st.flag, files: st.files, blocks: st.blocks, namemax: st.namemax }).toEqual({ err: 0, flag: 1, files: 13, blocks: 2, namemax: 255 });
  });
});

describe("MemoryTree", () => {
  it("should reject names that escape the layer", () => {
    const t = new MemoryTree("sha256:x");
    expect(() => t.add("../etc/passwd", { ...base, type: "reg", mode: 0o644 })).toThrow(expect.objectContaining({ code: "FUSEFS_BAD_LAYER" }));
    expect(() => t.add("a/../../b", { ...base, type: "reg", mode: 0o644 })).toThrow(expect.objectContaining({ code: "FUSEFS_BAD_LAYER" }));
    expect(() => t.link("x", "missing")).toThrow(expect.objectContaining({ code: "FUSEFS_BAD_LAYER" }));
  });

  it("should create implicit parents and walk parents first", () => {
    const t = new MemoryTree("sha256:x");
    t.add("./a/b/c", { ...base, type: "reg", mode: 0o600 });
    expect([...t.walk()].map((n: FileNode) => `${n.path}:${n.type}`)).toEqual([":dir", "a:dir", "a/b:dir", "a/b/c:reg"]);
  });
});

describe("FUSE operations on a layer still opening", () => {
  function opening() {
    const s = setup();
    let open!: () => void;
    let fail!: (err: Error) => void;
    const ready = new Promise<void>((res, rej) => ((open = res), (fail = rej)));
    ready.catch(() => undefined);
    s.core.opening.set("def", { slot: 3, ready });
    return { ...s, open, fail };
  }
  const settled = async <T>(p: Promise<T>): Promise<T | "pending"> => Promise.race([p, new Promise<"pending">((r) => setTimeout(() => r("pending"), 30))]);

  it("answers for its own directory at once, so an overlay can be mounted on it, and lists it at the root", async () => {
    const { ops, call } = opening();
    const [err, st] = await call<[number, { mode: number; ino: number; nlink: number }]>(ops.getattr, "/def.overlay");
    expect(err).toBe(0);
    expect(st.mode).toBe(0o40755);
    // the ino its tree's root will have: the layer's slot above, 1 below
    expect(st.ino).toBe(3 * 2 ** 24 + 1);
    expect(await call(ops.access, "/def", 4)).toEqual([0]);
    const [, names] = await call<[number, string[]]>(ops.readdir, "/");
    expect(names).toEqual(["abc", "abc.overlay", "def", "def.overlay"]);
  });

  it("makes what lies below (and listing it) wait until the layer is open, then answers from the layer", async () => {
    const { core, ops, call, open, layer } = opening();
    const lookup = call(ops.getattr, "/def/bin/su");
    const list = call(ops.readdir, "/def.overlay");
    expect(await settled(lookup)).toBe("pending");
    expect(await settled(list)).toBe("pending");
    core.layers.set("def", { hex: "def", slot: 3, layer });
    core.opening.delete("def");
    open();
    const [err, st] = (await lookup) as [number, { size: number }];
    expect([err, st.size]).toEqual([0, 11]);
    expect((await list)[0]).toBe(0);
    // the other layers never waited
    expect(await settled(call(ops.getattr, "/abc/bin/su"))).not.toBe("pending");
  });

  it("answers EIO below a layer that could not be opened", async () => {
    const { core, ops, call, fail } = opening();
    const lookup = call(ops.getattr, "/def.overlay/etc/passwd");
    const open = call(ops.open, "/def/etc/passwd", 0);
    core.opening.delete("def");
    fail(new Error("bad TOC"));
    expect(await lookup).toEqual([Errno.EIO]);
    expect(await open).toEqual([Errno.EIO]);
    expect(await call(ops.getattr, "/def")).toEqual([Errno.ENOENT]);
  });
});
