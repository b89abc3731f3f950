import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { FileNode } from "@lazypull/stargz-format";
import type { ImageConfig } from "@lazypull/registry-client";
import { ImageView, type LayerTree } from "../merged-view.js";
import { libraryNamesIn, MAX_NEEDED, MAX_SEARCH_DIRS, readElfDeps } from "./elf.js";
import { parseLdCache } from "./ld-cache.js";
import { LoadPredictor, prefetchStart, startArgv } from "./start-files.js";

type Entry = string | Buffer | { link: string };

/** An in-memory layer (paths → bytes or symlinks) that records what it was asked to prefetch. */
function layer(files: Record<string, Entry>): LayerTree & { prefetched: string[][] } {
  const nodes = new Map<string, FileNode & { data?: Buffer }>();
  const add = (path: string, n: Partial<FileNode> & { data?: Buffer }) =>
    nodes.set(path, { path, type: "dir", mode: 0o755, uid: 0, gid: 0, size: 0, mtimeMs: 0, xattrs: {}, nlink: 1, ino: nodes.size + 1, ...n });
  add("", {});
  for (const [path, e] of Object.entries(files)) {
    const parts = path.split("/");
    for (let i = 1; i < parts.length; i++) if (!nodes.has(parts.slice(0, i).join("/"))) add(parts.slice(0, i).join("/"), {});
    if (typeof e === "object" && !Buffer.isBuffer(e)) add(path, { type: "symlink", mode: 0o777, linkName: e.link });
    else {
      const data = Buffer.from(e);
      add(path, { type: "reg", mode: 0o755, size: data.length, data });
    }
  }
  const prefetched: string[][] = [];
  return {
    prefetched,
    lookup: (p) => nodes.get(p),
    readdir: (p) =>
      nodes.get(p)?.type === "dir"
        ? [...nodes.keys()].filter((k) => k !== "" && k.slice(0, Math.max(0, k.lastIndexOf("/"))) === p).map((k) => k.slice(k.lastIndexOf("/") + 1)).sort()
        : undefined,
    read: async (p, offset = 0, length) => nodes.get(p)!.data!.subarray(offset, length === undefined ? undefined : offset + length),
    prefetch: async (paths) => void prefetched.push(paths),
    progress: () => ({ bytesFetched: 0, requests: 0 }),
  };
}

const host = (p: string) => readFileSync(p);
const config = (c: ImageConfig["config"] = {}): ImageConfig => ({ architecture: "amd64", os: "linux", config: c, rootfs: { type: "layers", diff_ids: [] } });

/** a usr-merged Debian-like tree: /bin → usr/bin, the loader under /lib64, libraries in the multiarch dir */
const debianLike = (extra: Record<string, Entry> = {}) =>
  layer({
    bin: { link: "usr/bin" },
    lib: { link: "usr/lib" },
    lib64: { link: "usr/lib64" },
    "usr/bin/cat": host("/usr/bin/cat"),
    "usr/lib64/ld-linux-x86-64.so.2": { link: "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" },
    "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2": "loader",
    "usr/lib/x86_64-linux-gnu/libc.so.6": host("/lib/x86_64-linux-gnu/libc.so.6"),
    "etc/passwd": "root:x:0:0:root:/root:/bin/bash\n",
    "etc/group": "root:x:0:\n",
    "etc/localtime": { link: "/usr/share/zoneinfo/Etc/UTC" },
    "usr/share/zoneinfo/Etc/UTC": "TZif2",
    "etc/os-release": { link: "../usr/lib/os-release" },
    "usr/lib/os-release": "ID=debian\n",
    ...extra,
  });

describe("readElfDeps", () => {
  it("reads the interpreter and needed libraries of a real program", async () => {
    const bin = host("/usr/bin/cat");
    const deps = await readElfDeps(async (o, l) => bin.subarray(o, o + l));
    expect(deps?.interpreter).toBe("/lib64/ld-linux-x86-64.so.2");
    expect(deps?.needed).toEqual(["libc.so.6"]);
  });

  it("answers undefined for what is not ELF, and never throws on a truncated header", async () => {
    const text = Buffer.from("#!/bin/sh\necho hi\n");
    expect(await readElfDeps(async (o, l) => text.subarray(o, o + l))).toBeUndefined();
    const cut = host("/usr/bin/cat").subarray(0, 70);
    const deps = await readElfDeps(async (o, l) => cut.subarray(o, o + l));
    expect(deps).toBeUndefined();
  });
});

/** A minimal ELF64 (one PT_LOAD over the file, a PT_DYNAMIC) whose dynamic section holds `tags` (name tags point into `strings`). */
function syntheticElf(strings: string[], tags: Array<[number, number]>): Buffer {
  const strtab = Buffer.from(`\0${strings.join("\0")}\0`);
  const offsets: number[] = [];
  let at = 1;
  for (const str of strings) {
    offsets.push(at);
    at += Buffer.byteLength(str) + 1;
  }
  const dyn = [...tags.map(([t, i]) => [t, t === 1 || t === 15 || t === 29 ? offsets[i]! : i] as [number, number])];
  const dynOff = 64 + 2 * 56;
  const strOff = dynOff + (dyn.length + 3) * 16;
  dyn.push([5, strOff], [10, strtab.length], [0, 0]);
  const b = Buffer.alloc(strOff + strtab.length);
  b.writeUInt32BE(0x7f454c46, 0);
  b[4] = 2;
  b[5] = 1;
  b.writeBigUInt64LE(64n, 32);
  b.writeUInt16LE(56, 54);
  b.writeUInt16LE(2, 56);
  const ph = (i: number, type: number, off: number, size: number) => {
    b.writeUInt32LE(type, 64 + i * 56);
    b.writeBigUInt64LE(BigInt(off), 64 + i * 56 + 8);
    b.writeBigUInt64LE(BigInt(off), 64 + i * 56 + 16);
    b.writeBigUInt64LE(BigInt(size), 64 + i * 56 + 32);
  };
  ph(0, 1, 0, b.length);
  ph(1, 2, dynOff, dyn.length * 16);
  dyn.forEach(([t, v], i) => {
    b.writeBigInt64LE(BigInt(t), dynOff + i * 16);
    b.writeBigUInt64LE(BigInt(v), dynOff + i * 16 + 8);
  });
  strtab.copy(b, strOff);
  return b;
}

describe("readElfDeps on a lying file", () => {
  it("takes at most MAX_NEEDED libraries and MAX_SEARCH_DIRS directories, each once, however many the file lists", async () => {
    const names = Array.from({ length: 3000 }, (_, i) => `lib${i}.so`);
    const dirs = Array.from({ length: 1000 }, (_, i) => `/d${i}`).join(":");
    // 3000 DT_NEEDED, then 200 DT_RPATH and 200 DT_RUNPATH tags all naming the same 1000-directory string
    const tags: Array<[number, number]> = [...names.map((_, i) => [1, i] as [number, number]), ...Array.from({ length: 200 }, () => [15, 3000] as [number, number]), ...Array.from({ length: 200 }, () => [29, 3000] as [number, number])];
    const elf = syntheticElf([...names, dirs], tags);
    const deps = await readElfDeps(async (o, l) => elf.subarray(o, o + l));
    expect(deps?.needed).toHaveLength(MAX_NEEDED);
    expect(deps!.rpath.length + deps!.runpath.length).toBe(MAX_SEARCH_DIRS);
    expect(new Set(deps!.rpath).size).toBe(deps!.rpath.length);
  });
});

describe("parseLdCache", () => {
  it("maps sonames to paths from this host's cache", () => {
    const map = parseLdCache(host("/etc/ld.so.cache"));
    expect(map.get("libc.so.6")?.some((p) => p.endsWith("/libc.so.6"))).toBe(true);
  });

  it("gives an empty map for garbage", () => {
    expect(parseLdCache(Buffer.from("not a cache")).size).toBe(0);
    const lying = Buffer.alloc(64);
    lying.write("glibc-ld.so.cache1.1");
    lying.writeUInt32LE(1_000_000, 20);
    expect(parseLdCache(lying).size).toBe(0);
  });
});

describe("startArgv", () => {
  it("takes podman's rules: arguments replace Cmd, an entrypoint override drops Cmd", () => {
    const c = config({ Entrypoint: ["/entry"], Cmd: ["default"], Env: ["PATH=/opt/bin"] });
    expect(startArgv(c, {}).argv).toEqual(["/entry", "default"]);
    expect(startArgv(c, { command: ["x"] }).argv).toEqual(["/entry", "x"]);
    expect(startArgv(c, { entrypoint: ["sh"] }).argv).toEqual(["sh"]);
    expect(startArgv(c, { env: ["PATH=/x"] }).env.get("PATH")).toBe("/x");
  });
});

describe("prefetchStart", () => {
  it("fetches the start files, the program on PATH, its loader and libraries, through symlinks", async () => {
    const l = debianLike();
    const p = await prefetchStart(new ImageView([l]), config({ Env: ["PATH=/usr/local/bin:/usr/bin:/bin"] }), { command: ["cat", "/etc/os-release"] });
    expect(p.program).toBe("usr/bin/cat");
    expect(p.files).toEqual([
      "etc/passwd",
      "etc/group",
      "usr/share/zoneinfo/Etc/UTC",
      "usr/bin/cat",
      "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
      "usr/lib/x86_64-linux-gnu/libc.so.6",
      // the file the command names, through its symlink
      "usr/lib/os-release",
    ]);
    expect(l.prefetched.flat()).toEqual(p.files);
    // the loader and libc go with the program, not after its ELF header has been read
    expect(l.prefetched[1]).toEqual(["usr/bin/cat", "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "usr/lib/x86_64-linux-gnu/libc.so.6"]);
  });

  it("prefers what ld.so.cache says over the default directories", async () => {
    // an architecture with no libraries fetched on speculation, and a decoy in a default directory
    const l = debianLike({
      "usr/lib/libc.so.6": "decoy",
      "opt/glibc/libc.so.6": host("/lib/x86_64-linux-gnu/libc.so.6"),
      "etc/ld.so.cache": cacheNaming("libc.so.6", "/opt/glibc/libc.so.6"),
    });
    const p = await prefetchStart(new ImageView([l]), { ...config(), architecture: "riscv64" }, { command: ["/bin/cat"] });
    expect(p.files).toContain("opt/glibc/libc.so.6");
    expect(p.files).not.toContain("usr/lib/libc.so.6");
  });

  it("fetches what CPython's own start reads, from the interpreter's prefix, also behind a shebang", async () => {
    const py = {
      "usr/bin/python3": { link: "python3.11" },
      "usr/bin/python3.11": host("/usr/bin/cat"),
      "usr/lib/python3.11/encodings/__pycache__/__init__.cpython-311.pyc": "pyc",
      "usr/lib/python3.11/encodings/__pycache__/aliases.cpython-311.pyc": "pyc",
      "usr/lib/python3.11/encodings/__pycache__/utf_8.cpython-311.pyc": "pyc",
      "usr/lib/locale/C.utf8/LC_CTYPE": "ctype",
      "usr/local/bin/app": "#!/usr/bin/python3\nprint(1)\n",
    } as const;
    const want = [
      "usr/lib/python3.11/encodings/__pycache__/__init__.cpython-311.pyc",
      "usr/lib/python3.11/encodings/__pycache__/aliases.cpython-311.pyc",
      "usr/lib/python3.11/encodings/__pycache__/utf_8.cpython-311.pyc",
      "usr/lib/locale/C.utf8/LC_CTYPE",
    ];
    const direct = await prefetchStart(new ImageView([debianLike(py)]), config(), { command: ["python3", "-c", "print(1)"] });
    expect(direct.program).toBe("usr/bin/python3.11");
    expect(direct.files).toEqual(expect.arrayContaining(want));
    const script = await prefetchStart(new ImageView([debianLike(py)]), config(), { command: ["app"] });
    expect(script.files).toEqual(expect.arrayContaining(["usr/bin/python3.11", ...want]));
  });

    it("follows a #!/usr/bin/env shebang to the interpreter it names", async () => {
    const l = debianLike({ "usr/bin/env": host("/usr/bin/env"), "usr/local/bin/tool": "#!/usr/bin/env cat -v\nbody\n" });
    const p = await prefetchStart(new ImageView([l]), config({ Cmd: ["tool"] }));
    expect(p.files).toEqual(expect.arrayContaining(["usr/local/bin/tool", "usr/bin/env", "usr/bin/cat", "usr/lib/x86_64-linux-gnu/libc.so.6"]));
  });

  it("takes the upper layer's copy, skips what a whiteout hides, and keeps to its ceilings", async () => {
    const lower = debianLike();
    const upper = layer({ "etc/passwd": "root:x:0:0::/:/bin/sh\n", "etc/.wh.group": "" });
    const p = await prefetchStart(new ImageView([upper, lower]), config(), { command: ["cat"] }, { maxFiles: 3 });
    expect(upper.prefetched.flat()).toEqual(["etc/passwd"]);
    expect(p.files).not.toContain("etc/group");
    expect(p.files).toHaveLength(3);
  });

  it("never fails a start: no command, a missing program, a symlink loop", async () => {
    const l = debianLike({ "usr/bin/loop": { link: "/usr/bin/loop" } });
    expect((await prefetchStart(new ImageView([l]), config())).files).toEqual(["etc/passwd", "etc/group", "usr/share/zoneinfo/Etc/UTC"]);
    expect((await prefetchStart(new ImageView([l]), config(), { command: ["nope"] })).program).toBeUndefined();
    expect((await prefetchStart(new ImageView([l]), config(), { command: ["loop"] })).program).toBeUndefined();
  });
});

/** a one-entry glibc-ld.so.cache1.1 file */
function cacheNaming(soname: string, path: string): Buffer {
  const strings = Buffer.from(`${soname}\0${path}\0`);
  const header = Buffer.alloc(48);
  header.write("glibc-ld.so.cache1.1");
  header.writeUInt32LE(1, 20);
  header.writeUInt32LE(strings.length, 24);
  header[28] = 2;
  const entry = Buffer.alloc(24);
  entry.writeInt32LE(0x0303, 0);
  entry.writeUInt32LE(48 + 24, 4);
  entry.writeUInt32LE(48 + 24 + soname.length + 1, 8);
  return Buffer.concat([header, entry, strings]);
}

describe("libraryNamesIn", () => {
  it("finds the libraries a real program names in the first bytes of its file", async () => {
    const bin = host("/usr/bin/cat");
    const deps = await readElfDeps(async (o, l) => bin.subarray(o, o + l));
    expect(deps?.needed.length).toBeGreaterThan(0);
    expect(libraryNamesIn(bin.subarray(0, 16 * 1024))).toEqual(expect.arrayContaining(deps!.needed));
  });

  it("gives nothing for what is not ELF, and at most `max` names, each once", () => {
    expect(libraryNamesIn(Buffer.from("#!/bin/sh\0libc.so.6\0"))).toEqual([]);
    const names = Array.from({ length: 300 }, (_, i) => `lib${i}.so.1`);
    const elf = syntheticElf([...names, ...names, "libnot a name.so", "printf", "ld-linux-x86-64.so.2"], []);
    expect(libraryNamesIn(elf)).toEqual(names.slice(0, MAX_NEEDED));
    expect(libraryNamesIn(elf, 1000)).toEqual([...names, "ld-linux-x86-64.so.2"]);
  });
});

describe("a big program's libraries, guessed from the start of its file", () => {
  const needs = ["libz.so.1", "libexpat.so.1"];
  const libs = ["usr/lib/x86_64-linux-gnu/libz.so.1", "usr/lib/x86_64-linux-gnu/libexpat.so.1"];
  const program = syntheticElf(needs, [[1, 0], [1, 1]]);

  /** a layer whose program is slow to read whole (a big file still being fetched) but can be peeked at */
  function slowProgram(peek: boolean) {
    const l = debianLike({ "usr/bin/big": program, [libs[0]!]: "z", [libs[1]!]: "e" });
    const events: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((ok) => {
      release = ok;
      setTimeout(ok, 500);
    });
    const tree: LayerTree = {
      ...l,
      async read(p, o, n) {
        if (p === "usr/bin/big") {
          await held;
          events.push("program read");
        }
        return l.read(p, o, n);
      },
      async prefetch(paths) {
        events.push(...paths);
        if (paths.includes(libs[1]!)) release();
      },
      ...(peek ? { peek: async (p: string) => (p === "usr/bin/big" ? program.subarray(0, 4096) : undefined) } : {}),
    };
    return { tree, events };
  }

  it("fetches them before the program could be read, and each once", async () => {
    const { tree, events } = slowProgram(true);
    const p = await prefetchStart(new ImageView([tree]), config(), { command: ["big"] });
    const afterRead = events.slice(events.indexOf("program read"));
    for (const lib of libs) {
      expect(events.indexOf(lib)).toBeGreaterThan(-1);
      expect(afterRead).not.toContain(lib);
    }
    expect(p.files.filter((f) => libs.includes(f))).toEqual(libs);
  });

  it("are found by the ELF read alone when the layer cannot peek", async () => {
    const { tree, events } = slowProgram(false);
    await prefetchStart(new ImageView([tree]), config(), { command: ["big"] });
    const afterRead = events.slice(events.indexOf("program read"));
    expect(afterRead).toEqual(expect.arrayContaining(libs));
  });
});

describe("LoadPredictor.opened: a package's compiled modules", () => {
  const pkg = "usr/lib/python3/dist-packages/numpy/core/__pycache__";
  const modules = (names: string[]) => Object.fromEntries(names.map((n) => [`${pkg}/${n}`, "bytecode"]));

  it("fetches a __pycache__ directory's modules of the same interpreter when one is read, once", async () => {
    const l = debianLike(modules(["a.cpython-311.pyc", "b.cpython-311.pyc", "c.cpython-311.pyc", "a.cpython-312.pyc", "a.cpython-311.opt-1.pyc"]));
    const p = new LoadPredictor(new ImageView([l]), config(), { command: ["true-but-missing"] });
    await p.start();
    const calls = l.prefetched.length;
    await p.opened(`/${pkg}/b.cpython-311.pyc`);
    expect(l.prefetched.slice(calls)).toEqual([["a", "b", "c"].map((m) => `${pkg}/${m}.cpython-311.pyc`)]);
    await p.opened(`/${pkg}/c.cpython-311.pyc`);
    expect(l.prefetched).toHaveLength(calls + 1);
    // another optimisation level is another set
    await p.opened(`/${pkg}/a.cpython-311.opt-1.pyc`);
    expect(l.prefetched.slice(calls + 1)).toEqual([[`${pkg}/a.cpython-311.opt-1.pyc`]]);
  });

  it("leaves the interpreter's own library to be read on demand (a start imports a few of its modules)", async () => {
    const std = "usr/lib/python3.11/encodings/__pycache__";
    const l = debianLike({ [`${std}/__init__.cpython-311.pyc`]: "b", [`${std}/utf_8.cpython-311.pyc`]: "b", [`${std}/cp1252.cpython-311.pyc`]: "b" });
    const p = new LoadPredictor(new ImageView([l]), config(), { command: ["true-but-missing"] });
    await p.start();
    const calls = l.prefetched.length;
    await p.opened(`${std}/__init__.cpython-311.pyc`);
    expect(l.prefetched).toHaveLength(calls);
  });

  it("leaves a directory of more than 256 modules, and anything past the module ceiling, to be read on demand", async () => {
    const many = Array.from({ length: 257 }, (_, i) => `m${i}.cpython-311.pyc`);
    const l = debianLike({ ...modules(many), "usr/lib/python3/dist-packages/x/__pycache__/a.cpython-311.pyc": "b", "usr/lib/python3/dist-packages/x/__pycache__/b.cpython-311.pyc": "b" });
    const p = new LoadPredictor(new ImageView([l]), config(), { command: ["true-but-missing"] }, { maxModuleFiles: 1 });
    await p.start();
    const calls = l.prefetched.length;
    await p.opened(`${pkg}/m0.cpython-311.pyc`);
    await p.opened("usr/lib/python3/dist-packages/x/__pycache__/a.cpython-311.pyc");
    expect(l.prefetched).toHaveLength(calls);
  });
  it("spends no lookups in a directory listing more than 1024 entries, and lists it once whatever tags its names carry", async () => {
    // what an image puts in a directory is its own business: 1025 modules of 1025 made-up interpreters
    const l = debianLike(modules(Array.from({ length: 1025 }, (_, i) => `m.cpython-${i}.pyc`)));
    const listed: string[] = [];
    const looked: string[] = [];
    const view = new ImageView([
      {
        ...l,
        readdir: (d) => (listed.push(d), l.readdir(d)),
        lookup: (q) => (looked.push(q), l.lookup(q)),
      },
    ]);
    const p = new LoadPredictor(view, config(), { command: ["true-but-missing"] });
    await p.start();
    const calls = l.prefetched.length;
    looked.length = 0;
    for (let i = 0; i < 5; i++) await p.opened(`${pkg}/m.cpython-${i}.pyc`);
    expect(l.prefetched).toHaveLength(calls);
    expect(listed.filter((d) => d === pkg)).toHaveLength(1);
    // the opened files themselves (and the listing's own whiteout check), nothing else in the directory
    expect(looked.filter((q) => q.startsWith(`${pkg}/`) && !/\/(m\.cpython-[0-4]\.pyc|\.wh\.\.wh\.\.opq)$/.test(q))).toEqual([]);
  });
});

describe("LoadPredictor.opened", () => {
  it("fetches a just-opened library's own libraries, once, and ignores data files", async () => {
    const l = debianLike({
      // a Python extension module: not executable, named .so; it needs libc (and the loader is already known)
      "usr/lib/python3/ext.cpython-311-x86_64-linux-gnu.so": host("/usr/bin/cat"),
      "usr/share/doc/readme": "text",
    });
    const p = new LoadPredictor(new ImageView([l]), config(), { command: ["true-but-missing"] });
    await p.start();
    const before = p.fetched.files.length;
    await p.opened("/usr/share/doc/readme");
    expect(p.fetched.files).toHaveLength(before);
    await p.opened("/usr/lib/python3/ext.cpython-311-x86_64-linux-gnu.so");
    expect(p.fetched.files.slice(before)).toEqual(["usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "usr/lib/x86_64-linux-gnu/libc.so.6"]);
    const calls = l.prefetched.length;
    await p.opened("usr/lib/python3/ext.cpython-311-x86_64-linux-gnu.so");
    expect(l.prefetched).toHaveLength(calls);
  });
});
