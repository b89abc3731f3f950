import { readFile } from "node:fs/promises";
import { runSource } from "@lazypull/testkit";
import { describe, expect, it } from "vitest";

describe("lazypulld --version", () => {
  it("should print the daemon package's version and exit 0 without starting", async () => {
    const { version } = JSON.parse(await readFile(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
    for (const flag of ["--version", "-V"]) {
      const res = await runSource("apps/daemon/src/main.ts", [flag], { timeoutMs: 60_000 });
      expect(res.stdout).toBe(`${version}\n`);
    }
  });
});
