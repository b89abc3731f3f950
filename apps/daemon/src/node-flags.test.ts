import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { DAEMON_NODE_FLAGS } from "@lazypull/testkit";
import { describe, expect, it } from "vitest";
import { missingNodeFlags, NODE_FLAGS } from "./node-flags.js";

const here = import.meta.dirname;

describe("lazypulld's node flags", () => {
  it("should be on the bin's shebang and on `pnpm lazypulld`", async () => {
    const shebang = (await readFile(join(here, "main.ts"), "utf8")).split("\n")[0]!;
    const script = (JSON.parse(await readFile(join(here, "../../../package.json"), "utf8")) as { scripts: Record<string, string> }).scripts.lazypulld!;
    expect({ shebang: missingNodeFlags(shebang.split(" ")), script: missingNodeFlags(script.split(" ")) }).toEqual({ shebang: [], script: [] });
  });

  it("should be the flags the tests start lazypulld with (testkit's DAEMON_NODE_FLAGS)", () => {
    expect([...DAEMON_NODE_FLAGS]).toEqual([...NODE_FLAGS]);
  });

  it("should name the flags a process lacks", () => {
    expect(missingNodeFlags(["--inspect"])).toEqual([...NODE_FLAGS]);
    expect(missingNodeFlags([...NODE_FLAGS, "--inspect"])).toEqual([]);
  });
});
