import type { Command } from "commander";

interface CommandModule {
  register(program: Command): void;
}

/**
 * Every subcommand lives in its own module exporting `register(program)`; this list is the one
 * place that wires them up: each top-level command name and the module that registers it. The
 * modules are loaded on demand (in the bundle each is its own chunk), so `lazypull run` neither
 * reads nor evaluates convert's or podman's code.
 */
const MODULES: Record<string, () => Promise<CommandModule>> = {
  cache: () => import("./cache.js"),
  convert: () => import("./convert.js"),
  toc: () => import("./toc.js"),
  ls: () => import("./ls.js"),
  cat: () => import("./cat.js"),
  status: () => import("./status.js"),
  run: () => import("./run.js"),
  mount: () => import("./mount.js"),
  umount: () => import("./mount.js"),
  podman: () => import("./podman.js"),
};

/** the command names `registerCommands` knows, in help order */
export const COMMAND_NAMES = Object.keys(MODULES);

/**
 * Registers the command `argv` names and only it, or every command when it names none this list
 * knows (`--help`, `help run`, a typo commander should answer with its suggestions and the list).
 */
export async function registerCommands(program: Command, argv: readonly string[] = process.argv): Promise<void> {
  // no global option takes a value, so the first word that is not an option is the command
  const name = argv.slice(2).find((a) => !a.startsWith("-"));
  const load = name !== undefined && Object.hasOwn(MODULES, name) ? [MODULES[name]!] : Object.values(MODULES);
  // mount and umount share a module: register it once
  const modules = new Set(await Promise.all(load.map((l) => l())));
  for (const m of modules) m.register(program);
}
