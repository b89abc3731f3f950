import type { Command } from "commander";

/**
 * Every subcommand lives in its own module exporting `register(program)`; this list is the one
 * place that wires them up.
 */
const modules: Array<{ register(program: Command): void }> = [];

export function registerCommands(program: Command): void {
  for (const m of modules) m.register(program);
}
