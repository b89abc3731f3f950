#!/usr/bin/env node
import { Command, CommanderError } from "commander";
import { describeError } from "@lazypull/errors";
import { registerCommands } from "./commands/index.js";

const program = new Command("lazypull")
  .enablePositionalOptions()
  .description("Run containers straight from a registry without pulling the image first")
  .showHelpAfterError()
  .exitOverride();

registerCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  // One clear line for the user; the stack only when asked for.
  process.stderr.write(`lazypull: ${describeError(err)}\n`);
  if (process.env.LAZYPULL_DEBUG) console.error(err);
  process.exit(typeof (err as { exitCode?: unknown }).exitCode === "number" ? (err as { exitCode: number }).exitCode : 1);
}
