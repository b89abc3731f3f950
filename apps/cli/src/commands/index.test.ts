import { Command } from "commander";
import { describe, expect, it } from "vitest";
import { COMMAND_NAMES, registerCommands } from "./index.js";

const names = (p: Command) => p.commands.map((c) => c.name());

describe("registerCommands", () => {
  it("knows every top-level command the modules register, in their order", async () => {
    const program = new Command("lazypull").enablePositionalOptions();
    await registerCommands(program, ["node", "lazypull", "--help"]);
    expect(names(program)).toEqual(COMMAND_NAMES);
  });

  it("registers only the command argv names", async () => {
    const program = new Command("lazypull").enablePositionalOptions();
    await registerCommands(program, ["node", "lazypull", "run", "--rm", "alpine", "ls", "-l"]);
    expect(names(program)).toEqual(["run"]);
    const umount = new Command("lazypull").enablePositionalOptions();
    await registerCommands(umount, ["node", "lazypull", "umount", "/mnt"]);
    expect(names(umount)).toEqual(["mount", "umount"]);
  });

  it("registers everything for a word that is no command, so commander can suggest one", async () => {
    const program = new Command("lazypull").enablePositionalOptions();
    await registerCommands(program, ["node", "lazypull", "rnu"]);
    expect(names(program)).toEqual(COMMAND_NAMES);
  });
});
