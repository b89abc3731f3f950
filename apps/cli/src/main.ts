#!/usr/bin/env node
import { Command, CommanderError } from "commander";
import { describeError } from "@lazypull/errors";
import { runInRootlessNamespace, stopWithRootlessParent } from "./rootless.js";
import { cliVersion } from "./version.js";

// No top-level await: the bin is bundled as CommonJS, which the loader compiles with a V8 code cache (scripts/bundle.mjs).
async function main(): Promise<void> {
  try {
    // A rootless user's mounting commands run again inside rootless podman's namespaces (rootless.ts). This
    // process then only waits, so it decides that before loading the commands and everything they import.
    const status = await runInRootlessNamespace();
    if (status !== undefined) process.exit(status);
    await stopWithRootlessParent();
    const { registerCommands } = await import("./commands/index.js");
    const program = new Command("lazypull")
      .enablePositionalOptions()
      .description("Run containers straight from a registry without pulling the image first")
      .version(cliVersion(), "-V, --version")
      .showHelpAfterError()
      .exitOverride();
    // only the command argv names is loaded (commands/index.ts)
    await registerCommands(program);
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) process.exit(err.exitCode);
    // One clear line for the user; the stack only when asked for.
    process.stderr.write(`lazypull: ${describeError(err)}\n`);
    if (process.env.LAZYPULL_DEBUG) console.error(err);
    process.exit(typeof (err as { exitCode?: unknown }).exitCode === "number" ? (err as { exitCode: number }).exitCode : 1);
  }
}

void main();
