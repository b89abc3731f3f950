import type { ImageConfig } from "@lazypull/registry-client";
import type { ImageView } from "../merged-view.js";
import { normalizePath } from "../paths.js";
import { resolveSymlinks } from "../resolve-path.js";
import { libraryNamesIn, readElfDeps, type ElfDeps } from "./elf.js";
import { parseLdCache } from "./ld-cache.js";

/**
 * What every container start reads before the program's own files: podman looks up the user in
 * /etc/passwd and /etc/group, glibc reads nsswitch.conf and the loader's cache, and most programs ask
 * for the local time zone. (Measured with `lazypull run --record-access` on Debian: passwd and group
 * are the first two reads, before runc starts the process.)
 */
export const START_FILES = ["etc/passwd", "etc/group", "etc/nsswitch.conf", "etc/ld.so.cache", "etc/localtime"] as const;

const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** multiarch directory names Debian and Ubuntu put libraries in, by OCI architecture */
const MULTIARCH: Record<string, string> = {
  amd64: "x86_64-linux-gnu",
  arm64: "aarch64-linux-gnu",
  arm: "arm-linux-gnueabihf",
  "386": "i386-linux-gnu",
  ppc64le: "powerpc64le-linux-gnu",
  s390x: "s390x-linux-gnu",
  riscv64: "riscv64-linux-gnu",
};

/**
 * The loader and C library nearly every dynamic program maps, by OCI architecture (glibc's, then musl's,
 * whose loader is its libc): fetched with the program itself instead of after its ELF header has been
 * read, which saves a round trip on most starts. A static program's image rarely has them at all.
 */
const START_LIBRARIES: Record<string, string[]> = {
  amd64: ["lib64/ld-linux-x86-64.so.2", "lib/x86_64-linux-gnu/libc.so.6", "lib/ld-musl-x86_64.so.1"],
  arm64: ["lib/ld-linux-aarch64.so.1", "lib/aarch64-linux-gnu/libc.so.6", "lib/ld-musl-aarch64.so.1"],
};

/** How the container will be started: what `podman run` is given on top of the image's config. */
export interface StartCommand {
  /** replaces the image's Entrypoint (and then its Cmd is not used), already split into words */
  entrypoint?: string[];
  /** the command and arguments; absent or empty: the image's Cmd */
  command?: string[];
  /** `K=V` settings on top of the image's Env (PATH and LD_LIBRARY_PATH matter here) */
  env?: string[];
  /** the working directory a relative program path is taken from */
  workdir?: string;
}

export interface PredictOptions {
  /**
   * levels of shared libraries followed from the program: 1 = what it names, 2 = theirs too (default;
   * on Debian, level 2 adds nothing level 1 lacks for python3 and coreutils, and costs only lookups)
   */
  libraryDepth?: number;
  /** files at most, the start and every reaction together (default 256), Python modules apart */
  maxFiles?: number;
  /** compiled Python modules at most, fetched a `__pycache__` directory at a time (default 2048) */
  maxModuleFiles?: number;
  /** uncompressed bytes at most, all together (default 256 MiB): a huge program is left to be read on demand */
  maxBytes?: number;
}

export interface StartPrediction {
  /** image paths fetched, in the order they were chosen */
  files: string[];
  /** their uncompressed size */
  bytes: number;
  /** the program the start runs, as found on PATH (undefined: no command, or not found) */
  program?: string;
}

const MAX_SHEBANG_HOPS = 4;
/** a `__pycache__` directory with more modules than this is not fetched whole when one of them is read */
const MAX_MODULE_DIR_FILES = 256;
/** nor one whose modules add up to more than this (uncompressed) */
const MAX_MODULE_DIR_BYTES = 8 * 1024 * 1024;
/** nor one listing more entries than this, whatever they are (so no lookups are spent in it) */
const MAX_MODULE_DIR_ENTRIES = 4 * MAX_MODULE_DIR_FILES;
/** `__pycache__` directories (per interpreter tag) one predictor considers at most */
const MAX_MODULE_DIRS = 512;
/** search paths of a file whose ELF headers are not read yet: only the environment's and the loader's own apply */
const NO_DEPS: ElfDeps = { needed: [], rpath: [], runpath: [] };
/** command arguments looked up as files in the image (lookups only: a missing one costs nothing) */
const MAX_ARGUMENT_FILES = 8;
/** path lookups one predictor makes at most (a start needs a few hundred; each is a walk through the TOC tree) */
const MAX_LOOKUPS = 20_000;

/**
 * What an interpreter's own start reads, beyond its binary and libraries: CPython 3 imports the
 * `encodings` package and the filesystem codec before it runs anything ("init_fs_encoding" fails without
 * them), coerces the C locale to C.UTF-8 (reading that locale's LC_CTYPE and iconv's module cache), and
 * Debian's `site` imports sitecustomize. Recorded with `lazypull run --record-access` on Debian's
 * python3.11 (`python3 -c 'print(1)'`): these are every read after the libraries, each one a round trip
 * when not predicted. Paths are from the interpreter's prefix (`usr` for `usr/bin/python3.11`,
 * `usr/local` for the official images' `usr/local/bin/python3.12`); missing ones are skipped.
 */
function interpreterStartFiles(program: string, multiarch: string | undefined): string[] {
  const m = /^(.*?)\/?bin\/python(\d)\.(\d+)$/.exec(program);
  if (!m) return [];
  const prefix = m[1] ? `${m[1]}/` : "";
  const lib = `${prefix}lib/python${m[2]}.${m[3]}`;
  const tag = `cpython-${m[2]}${m[3]}`;
  return [
    `${lib}/encodings/__pycache__/__init__.${tag}.pyc`,
    `${lib}/encodings/__pycache__/aliases.${tag}.pyc`,
    `${lib}/encodings/__pycache__/utf_8.${tag}.pyc`,
    `${lib}/__pycache__/sitecustomize.${tag}.pyc`,
    "usr/lib/locale/C.utf8/LC_CTYPE",
    ...(multiarch ? [`usr/lib/${multiarch}/gconv/gconv-modules.cache`] : []),
  ];
}
/** an ld.so.cache bigger than this is not read for a prediction (Debian's: ~20 KB) */
const MAX_LD_CACHE_BYTES = 4 * 1024 * 1024;

/** The program, arguments and environment a `podman run` of this image with `start` executes. */
export function startArgv(config: ImageConfig, start: StartCommand): { argv: string[]; env: Map<string, string>; workdir: string } {
  const c = config.config ?? {};
  const entrypoint = start.entrypoint ?? c.Entrypoint ?? [];
  const cmd = start.entrypoint !== undefined || (start.command?.length ?? 0) > 0 ? (start.command ?? []) : (c.Cmd ?? []);
  const env = new Map<string, string>();
  for (const kv of [...(c.Env ?? []), ...(start.env ?? [])]) {
    const eq = kv.indexOf("=");
    if (eq > 0) env.set(kv.slice(0, eq), kv.slice(eq + 1));
  }
  return { argv: [...entrypoint, ...cmd], env, workdir: start.workdir ?? c.WorkingDir ?? "/" };
}

/**
 * What a start (and then the running program) of one image will read, fetched ahead: one per image,
 * remembering what it already fetched so the start's prediction and later reactions never ask twice.
 */
export class LoadPredictor {
  /** resolved paths fetched, in the order chosen */
  private readonly chosen = new Set<string>();
  private readonly inspected = new Set<string>();
  private bytes = 0;
  private readonly fetches: Promise<void>[] = [];
  private readonly env: Map<string, string>;
  private readonly workdir: string;
  private readonly argv: string[];
  private readonly maxFiles: number;
  private readonly maxModuleFiles: number;
  private moduleFiles = 0;
  /** `__pycache__` directories (and their interpreter's tag) already considered; a directory alone when it is too big for any tag */
  private readonly moduleDirs = new Set<string>();
  private readonly maxBytes: number;
  private readonly libraryDepth: number;
  private readonly defaultDirs: string[];
  private readonly startLibraries: string[];
  private readonly multiarch: string | undefined;
  private ldCache: Promise<Map<string, string[]>> | undefined;
  private lookups = 0;

  constructor(
    private readonly view: ImageView,
    config: ImageConfig,
    start: StartCommand = {},
    o: PredictOptions = {},
  ) {
    ({ argv: this.argv, env: this.env, workdir: this.workdir } = startArgv(config, start));
    this.startLibraries = START_LIBRARIES[config.architecture ?? "amd64"] ?? [];
    this.maxFiles = o.maxFiles ?? 256;
    this.maxModuleFiles = o.maxModuleFiles ?? 2048;
    this.maxBytes = o.maxBytes ?? 256 * 1024 * 1024;
    this.libraryDepth = o.libraryDepth ?? 2;
    const multiarch = MULTIARCH[config.architecture ?? "amd64"];
    this.multiarch = multiarch;
    this.defaultDirs = [...(multiarch ? [`/lib/${multiarch}`, `/usr/lib/${multiarch}`] : []), "/lib64", "/usr/lib64", "/lib", "/usr/lib"];
  }

  /** Fetches what the start reads first; resolves when those fetches are done. */
  async start(): Promise<StartPrediction> {
    this.take([...START_FILES]);
    const name = this.argv[0];
    const program = name === undefined ? undefined : this.onPath(name);
    if (program !== undefined) {
      this.take([program, ...this.startLibraries, ...interpreterStartFiles(program, this.multiarch)]);
      // files the command names (`cat /etc/os-release`, `python3 app.py`): read as soon as it runs
      this.take(this.argv.slice(1, 1 + MAX_ARGUMENT_FILES).flatMap((a) => (a.startsWith("-") || a.length > 4096 ? [] : [a.startsWith("/") ? a : `${this.workdir}/${a}`])));
      await this.inspect(program, 0, 0).catch(() => undefined);
    }
    await Promise.all(this.fetches);
    return { ...this.fetched, ...(program !== undefined ? { program } : {}) };
  }

  /**
   * A file was just opened for reading (by the loader, or `dlopen`, or an exec): when it is a program
   * or shared library, fetch its loader and libraries before the loader asks for them one by one.
   */
  async opened(path: string): Promise<void> {
    const p = normalizePath(path);
    const node = this.view.lookup(p);
    if (node?.type !== "reg" || this.inspected.has(p)) return;
    if (p.endsWith(".pyc")) return this.modulesBeside(p);
    if ((node.mode & 0o111) === 0 && !/\.so(\.|$)/.test(p)) return;
    await this.inspect(p, 0, 0).catch(() => undefined);
  }

  /**
   * A compiled module was just read from a `__pycache__` directory: the interpreter is importing a
   * package, and will most likely import its siblings next, one round trip each (`import numpy` read
   * ~90 modules one after the other, 3.6 s of its 4.5 s start at 100mbit/20ms-rtt). The directory's
   * modules of the same interpreter (`name.cpython-311.pyc`, `.opt-1` kept apart) are fetched now, in
   * as few requests as they are adjacent in the blob. Only installed packages (`site-packages`,
   * `dist-packages`): the interpreter's own library is imported a few modules at a time (`print(1)`
   * reads ~20 of the ~200 in `lib/python3.11/__pycache__`, and 3 of `encodings`' ~120). A directory of
   * more than MAX_MODULE_DIR_FILES, or MAX_MODULE_DIR_BYTES, is left alone too.
   */
  private async modulesBeside(pyc: string): Promise<void> {
    if (!/\/(site|dist)-packages\//.test(pyc) || this.moduleFiles >= this.maxModuleFiles) return;
    const m = /^(.*\/__pycache__)\/[^/.]+(\.[a-z]+-\d+(?:\.opt-\d+)?\.pyc)$/.exec(pyc);
    if (!m) return;
    const [, dir, suffix] = m as unknown as [string, string, string];
    // what an image puts in a directory is its own business: the work spent here is bounded by constants
    if (this.moduleDirs.has(dir) || this.moduleDirs.has(dir + suffix) || this.moduleDirs.size >= MAX_MODULE_DIRS) return;
    const listing = this.view.readdir(dir) ?? [];
    const tooBig = listing.length > MAX_MODULE_DIR_ENTRIES;
    this.moduleDirs.add(tooBig ? dir : dir + suffix);
    if (tooBig) return;
    // `x.cpython-311.opt-1.pyc` does not end with `.cpython-311.pyc`: optimisation levels stay apart
    const names = listing.filter((n) => n.endsWith(suffix) && !n.slice(0, -suffix.length).includes("."));
    if (names.length > MAX_MODULE_DIR_FILES || this.moduleFiles + names.length > this.maxModuleFiles) return;
    let bytes = 0;
    for (const name of names) {
      if (++this.lookups > MAX_LOOKUPS) return;
      bytes += this.view.lookup(`${dir}/${name}`)?.size ?? 0;
      if (bytes > MAX_MODULE_DIR_BYTES) return;
    }
    this.moduleFiles += this.take(names.map((n) => `${dir}/${n}`), true);
    await Promise.all(this.fetches);
  }

  /** everything fetched so far, and its uncompressed size */
  get fetched(): { files: string[]; bytes: number } {
    return { files: [...this.chosen].map(normalizePath), bytes: this.bytes };
  }

  /** the image path of the regular file `p` names (symlinks followed), if there is one */
  private regular(p: string): string | undefined {
    // lookups run on the serving thread: a predictor spends at most this many, whatever the image says
    if (++this.lookups > MAX_LOOKUPS) return undefined;
    try {
      const resolved = resolveSymlinks(this.view, p);
      return this.view.lookup(resolved)?.type === "reg" ? resolved : undefined;
    } catch {
      return undefined; // a symlink loop: nothing to predict there
    }
  }

  /** fetches what is new among `paths`, within the ceilings (modules have their own file ceiling, counted by the caller); returns how many */
  private take(paths: Array<string | undefined>, modules = false): number {
    const fresh: string[] = [];
    for (const p of paths) {
      const r = p === undefined ? undefined : this.regular(p);
      if (r === undefined || this.chosen.has(r) || (!modules && this.chosen.size - this.moduleFiles >= this.maxFiles)) continue;
      const size = this.view.lookup(r)?.size ?? 0;
      if (this.bytes + size > this.maxBytes) continue;
      this.bytes += size;
      this.chosen.add(r);
      fresh.push(r);
    }
    if (fresh.length > 0) this.fetches.push(this.view.prefetch(fresh).catch(() => undefined));
    return fresh.length;
  }

  private onPath(name: string): string | undefined {
    if (name.includes("/")) return this.regular(name.startsWith("/") ? name : `${this.workdir}/${name}`);
    for (const dir of (this.env.get("PATH") ?? DEFAULT_PATH).split(":")) {
      if (!dir.startsWith("/")) continue;
      const r = this.regular(`${dir}/${name}`);
      if (r !== undefined && ((this.view.lookup(r)?.mode ?? 0) & 0o111) !== 0) return r;
    }
    return undefined;
  }

  private cachedLibs(): Promise<Map<string, string[]>> {
    this.ldCache ??= (async () => {
      const p = this.regular("etc/ld.so.cache");
      const size = p === undefined ? 0 : (this.view.lookup(p)?.size ?? 0);
      if (p === undefined || size > MAX_LD_CACHE_BYTES) return new Map<string, string[]>();
      return parseLdCache(await this.view.readFile(p, 0, size));
    })().catch(() => new Map<string, string[]>());
    return this.ldCache;
  }

  /** where the loader finds `name` for the object at `from`: RPATH, LD_LIBRARY_PATH, RUNPATH, ld.so.cache, default dirs */
  private async findLibrary(name: string, from: string, deps: ElfDeps): Promise<string | undefined> {
    if (name.includes("/")) return this.regular(name);
    const origin = from.includes("/") ? from.slice(0, from.lastIndexOf("/")) : "";
    const expand = (dirs: string[]) => dirs.map((d) => d.replace(/\$(ORIGIN|\{ORIGIN\})/g, `/${origin}`));
    const ldLibraryPath = (this.env.get("LD_LIBRARY_PATH") ?? "").split(":").filter(Boolean);
    for (const d of [...(deps.runpath.length === 0 ? expand(deps.rpath) : []), ...ldLibraryPath, ...expand(deps.runpath)]) {
      const r = this.regular(`${d}/${name}`);
      if (r !== undefined) return r;
    }
    for (const p of (await this.cachedLibs()).get(name) ?? []) {
      const r = this.regular(p);
      if (r !== undefined) return r;
    }
    for (const d of this.defaultDirs) {
      const r = this.regular(`${d}/${name}`);
      if (r !== undefined) return r;
    }
    return undefined;
  }

  private async inspect(path: string, libLevel: number, hops: number): Promise<void> {
    if (this.inspected.has(path)) return;
    this.inspected.add(path);
    // a program (not one of its libraries) may be big: its libraries are guessed while it is fetched
    await Promise.all([this.inspectFile(path, libLevel, hops), libLevel === 0 ? this.guessLibraries(path) : undefined]);
  }

  /**
   * The libraries a big program names, guessed from the start of its file before all of it is here, so
   * they go out alongside the program and not a round trip after it. Debian's python3.11 is 2 chunks
   * (2.7 MB compressed): its library names sit in the first ~100 KB, the `.dynamic` table saying which
   * strings they are at 5.5 MB. A wrong guess costs the fetch of a library the image has; the file's
   * ELF read still decides what the start needs.
   */
  private async guessLibraries(path: string): Promise<void> {
    if (this.libraryDepth < 1) return;
    const head = await this.view.peekFile(path).catch(() => undefined);
    if (head === undefined) return;
    await this.takeLibraries(libraryNamesIn(head), path, NO_DEPS, 1, 0);
  }

  /** fetches the libraries `names` of `from` (found as the loader would), then inspects each at `libLevel` */
  private async takeLibraries(names: string[], from: string, deps: ElfDeps, libLevel: number, hops: number): Promise<void> {
    const libs = await Promise.all(names.map((n) => this.findLibrary(n, from, deps)));
    this.take(libs);
    await Promise.all(libs.flatMap((lib) => (lib === undefined ? [] : [this.inspect(lib, libLevel, hops).catch(() => undefined)])));
  }

  private async inspectFile(path: string, libLevel: number, hops: number): Promise<void> {
    const head = await this.view.readFile(path, 0, 256);
    if (head[0] === 0x23 && head[1] === 0x21) {
      if (hops >= MAX_SHEBANG_HOPS) return;
      const line = head.toString("latin1", 2, head.indexOf(10) < 0 ? head.length : head.indexOf(10)).trim();
      const [interp, arg] = line.split(/[ \t]+/, 2);
      if (!interp) return;
      const targets = [this.regular(interp)];
      // `#!/usr/bin/env python3`: the program env runs is the one that matters
      if (interp.endsWith("/env") && arg && !arg.startsWith("-")) targets.push(this.onPath(arg));
      this.take(targets);
      this.take(targets.flatMap((t) => (t === undefined ? [] : interpreterStartFiles(t, this.multiarch))));
      await Promise.all(targets.flatMap((t) => (t === undefined ? [] : [this.inspect(t, 0, hops + 1).catch(() => undefined)])));
      return;
    }
    const deps = await readElfDeps((offset, length) => this.view.readFile(path, offset, length));
    if (!deps) return;
    if (deps.interpreter) this.take([deps.interpreter]);
    if (libLevel >= this.libraryDepth) return;
    await this.takeLibraries(deps.needed, path, deps, libLevel + 1, hops);
  }
}

/**
 * Fetches, in parallel and in as few range requests as the layers allow, what the start of a
 * container from this image will read first: the files every start reads, the program found on PATH,
 * its `#!` interpreter, or its ELF loader and shared libraries (found as the loader would: RPATH,
 * LD_LIBRARY_PATH, RUNPATH, ld.so.cache, the default directories). Resolves when those fetches are
 * done; a file that cannot be fetched is left to be read on demand (the prediction never fails a start).
 */
export function prefetchStart(view: ImageView, config: ImageConfig, start: StartCommand = {}, o: PredictOptions = {}): Promise<StartPrediction> {
  return new LoadPredictor(view, config, start, o).start();
}
