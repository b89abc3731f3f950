import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { makeWorkDir, sweepDeadWorkDirs, WORK_PARENT } from "./work-dir.js";

describe("conversion work directories", () => {
  let base: string | undefined;
  afterEach(async () => {
    if (base) await rm(base, { recursive: true, force: true });
  });

  it("should remove what killed conversions left, and nothing of live processes or others", async () => {
    base = await mkdtemp(join(tmpdir(), "lazypull-workdir-test-"));
    const parent = join(base, WORK_PARENT);
    // 4194305 is above the kernel's pid_max: never a live process
    for (const name of ["4194305-abc", `${process.pid}-mine`, `${process.ppid}-parent`, "notes"]) {
      await mkdir(join(parent, name), { recursive: true });
      await writeFile(join(parent, name, "layer.esgz"), "x");
    }
    expect(await sweepDeadWorkDirs(parent)).toEqual(["4194305-abc"]);
    expect((await readdir(parent)).sort()).toEqual([`${process.pid}-mine`, `${process.ppid}-parent`, "notes"].sort());
  });

  it("should make this process's directory under lazypull's own parent, sweeping first", async () => {
    base = await mkdtemp(join(tmpdir(), "lazypull-workdir-test-"));
    await mkdir(join(base, WORK_PARENT, "4194305-old"), { recursive: true });
    const dir = await makeWorkDir(base);
    expect(dir.startsWith(join(base, WORK_PARENT, `${process.pid}-`))).toBe(true);
    expect(await readdir(join(base, WORK_PARENT))).toEqual([dir.slice(dir.lastIndexOf("/") + 1)]);
  });
});
