import type { ImageConfig } from "@lazypull/registry-client";
import type { ImageView } from "../merged-view.js";
import { normalizePath } from "../paths.js";
import { resolveSymlinks } from "../resolve-path.js";
import { readElfDeps, type ElfDeps } from "./elf.js";
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
  /** files at most (default 64) */
  maxFiles?: number;
  /** uncompressed bytes at most (default 128 MiB): a huge program is left to be read on demand */
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
 * Fetches, in parallel and in as few range requests as the layers allow, what the start of a
 * container from this image will read first: the files every start reads, the program found on PATH,
 * its `#!` interpreter, or its ELF loader and shared libraries (found as the loader would: RPATH,
 * LD_LIBRARY_PATH, RUNPATH, ld.so.cache, the default directories). Resolves when those fetches are
 * done; a file that cannot be fetched is left to be read on demand (the prediction never fails a start).
 */
export async function prefetchStart(view: ImageView, config: ImageConfig, start: StartCommand = {}, o: PredictOptions = {}): Promise<StartPrediction> {
  const maxFiles = o.maxFiles ?? 64;
  const maxBytes = o.maxBytes ?? 128 * 1024 * 1024;
  const libraryDepth = o.libraryDepth ?? 2;
  const { argv, env, workdir } = startArgv(config, start);
  const chosen: string[] = [];
  let bytes = 0;
  const fetches: Promise<void>[] = [];

  /** the image path of the regular file `p` names (symlinks followed), if there is one */
  const regular = (p: string): string | undefined => {
    try {
      const resolved = resolveSymlinks(view, p);
      return view.lookup(resolved)?.type === "reg" ? resolved : undefined;
    } catch {
      return undefined; // a symlink loop: nothing to predict there
    }
  };
  /** fetches what is new among `paths`, within the ceilings; returns the resolved paths it took */
  const take = (paths: Array<string | undefined>): string[] => {
    const fresh: string[] = [];
    for (const p of paths) {
      const r = p === undefined ? undefined : regular(p);
      if (r === undefined || chosen.includes(r) || chosen.length >= maxFiles) continue;
      const size = view.lookup(r)?.size ?? 0;
      if (bytes + size > maxBytes) continue;
      bytes += size;
      chosen.push(r);
      fresh.push(r);
    }
    if (fresh.length > 0) fetches.push(view.prefetch(fresh).catch(() => undefined));
    return fresh;
  };
  const onPath = (name: string): string | undefined => {
    if (name.includes("/")) return regular(name.startsWith("/") ? name : `${workdir}/${name}`);
    for (const dir of (env.get("PATH") ?? DEFAULT_PATH).split(":")) {
      if (!dir.startsWith("/")) continue;
      const r = regular(`${dir}/${name}`);
      if (r !== undefined && ((view.lookup(r)?.mode ?? 0) & 0o111) !== 0) return r;
    }
    return undefined;
  };

  let ldCache: Promise<Map<string, string[]>> | undefined;
  const cachedLibs = () => {
    ldCache ??= (async () => {
      const p = regular("etc/ld.so.cache");
      const size = p === undefined ? 0 : (view.lookup(p)?.size ?? 0);
      if (p === undefined || size > MAX_LD_CACHE_BYTES) return new Map<string, string[]>();
      return parseLdCache(await view.readFile(p, 0, size));
    })().catch(() => new Map<string, string[]>());
    return ldCache;
  };
  const multiarch = MULTIARCH[config.architecture ?? "amd64"];
  const defaultDirs = [...(multiarch ? [`/lib/${multiarch}`, `/usr/lib/${multiarch}`] : []), "/lib64", "/usr/lib64", "/lib", "/usr/lib"];
  const findLibrary = async (name: string, from: string, deps: ElfDeps): Promise<string | undefined> => {
    if (name.includes("/")) return regular(name);
    const origin = from.includes("/") ? from.slice(0, from.lastIndexOf("/")) : "";
    const expand = (dirs: string[]) => dirs.map((d) => d.replace(/\$(ORIGIN|\{ORIGIN\})/g, `/${origin}`));
    const ldLibraryPath = (env.get("LD_LIBRARY_PATH") ?? "").split(":").filter(Boolean);
    const dirs = [...(deps.runpath.length === 0 ? expand(deps.rpath) : []), ...ldLibraryPath, ...expand(deps.runpath)];
    for (const d of dirs) {
      const r = regular(`${d}/${name}`);
      if (r !== undefined) return r;
    }
    for (const p of (await cachedLibs()).get(name) ?? []) {
      const r = regular(p);
      if (r !== undefined) return r;
    }
    for (const d of defaultDirs) {
      const r = regular(`${d}/${name}`);
      if (r !== undefined) return r;
    }
    return undefined;
  };

  const inspect = async (path: string, libLevel: number, hops: number): Promise<void> => {
    const head = await view.readFile(path, 0, 256);
    if (head[0] === 0x23 && head[1] === 0x21) {
      if (hops >= MAX_SHEBANG_HOPS) return;
      const line = head.toString("latin1", 2, head.indexOf(10) < 0 ? head.length : head.indexOf(10)).trim();
      const [interp, arg] = line.split(/[ \t]+/, 2);
      if (!interp) return;
      const targets = [regular(interp)];
      // `#!/usr/bin/env python3`: the program env runs is the one that matters
      if (interp.endsWith("/env") && arg && !arg.startsWith("-")) targets.push(onPath(arg));
      const fresh = take(targets);
      await Promise.all(fresh.map((t) => inspect(t, 0, hops + 1)));
      return;
    }
    const deps = await readElfDeps((offset, length) => view.readFile(path, offset, length));
    if (!deps) return;
    if (deps.interpreter) take([deps.interpreter]);
    if (libLevel >= libraryDepth) return;
    const libs = await Promise.all(deps.needed.map((n) => findLibrary(n, path, deps)));
    const fresh = take(libs);
    await Promise.all(fresh.map((lib) => inspect(lib, libLevel + 1, hops).catch(() => undefined)));
  };

  take([...START_FILES]);
  const program = argv[0] === undefined ? undefined : onPath(argv[0]);
  if (program !== undefined) {
    take([program]);
    await inspect(program, 0, 0).catch(() => undefined);
  }
  await Promise.all(fetches);
  return { files: chosen.map(normalizePath), bytes, ...(program !== undefined ? { program } : {}) };
}
