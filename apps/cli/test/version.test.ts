import { readFile } from "node:fs/promises";
import { runCli } from "@lazypull/testkit";
import { describe, expect, it } from "vitest";

describe("lazypull --version", () => {
  it("should print the CLI package's version and exit 0", async () => {
    const { version } = JSON.parse(await readFile(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
    for (const flag of ["--version", "-V"]) {
      const res = await runCli([flag], { timeoutMs: 60_000 });
      expect(res.stdout.trim()).toBe(version);
    }
  });
});
