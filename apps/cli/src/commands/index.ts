import type { Command } from "commander";
import * as cache from "./cache.js";
import * as convert from "./convert.js";
import * as toc from "./toc.js";
import * as ls from "./ls.js";
import * as cat from "./cat.js";
import * as status from "./status.js";
import * as run from "./run.js";
import * as mount from "./mount.js";
import * as podman from "./podman.js";

/**
 * Every subcommand lives in its own module exporting `register(program)`; this list is the one
 * place that wires them up.
 */
const modules: Array<{ register(program: Command): void }> = [
  cache,
  convert,
  toc,
  ls,
  cat,
  status,
  run,
  mount,
  podman,
];

export function registerCommands(program: Command): void {
  for (const m of modules) m.register(program);
}
