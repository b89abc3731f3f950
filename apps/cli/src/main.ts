#!/usr/bin/env node
import { Command, CommanderError } from "commander";
import { describeError } from "@lazypull/errors";
import { registerCommands } from "./commands/index.js";
import { runInRootlessNamespace, stopWithRootlessParent } from "./rootless.js";

const program = new Command("lazypull")
  .enablePositionalOptions()
  .description("Run containers straight from a registry without pulling the image first")
  .showHelpAfterError()
  .exitOverride();

registerCommands(program);

try {
  // a rootless user's mounting commands run again inside rootless podman's namespaces (rootless.ts)
  const status = await runInRootlessNamespace();
  if (status !== undefined) process.exit(status);
  stopWithRootlessParent();
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  // One clear line for the user; the stack only when asked for.
  process.stderr.write(`lazypull: ${describeError(err)}\n`);
  if (process.env.LAZYPULL_DEBUG) console.error(err);
  process.exit(typeof (err as { exitCode?: unknown }).exitCode === "number" ? (err as { exitCode: number }).exitCode : 1);
}
