import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { sweepDeadPidEntries } from "./dead-pid-files.js";
import { isProcessAlive, isSameProcessAlive, processStartTime } from "./process.js";
import { sleep } from "./sleep.js";

/** above any pid_max (4194304), so never a live process */
const DEAD = 99_999_999;

describe("processes", () => {
  it("should tell live processes from dead ones, and a reused pid by its start time", async () => {
    expect([isProcessAlive(process.pid), isProcessAlive(DEAD), isProcessAlive(0), isProcessAlive(-1)]).toEqual([true, false, false, false]);
    const start = await processStartTime(process.pid);
    expect(start).toBeGreaterThan(0);
    expect(await isSameProcessAlive(process.pid, start)).toBe(true);
    expect(await isSameProcessAlive(process.pid, start! + 1)).toBe(false);
    expect(await isSameProcessAlive(process.pid, null)).toBe(true);
    expect(await isSameProcessAlive(DEAD, null)).toBe(false);
  });

  it("should sweep the entries of dead pids only", async () => {
    const dir = await mkdtemp(join(tmpdir(), "lazypull-host-"));
    try {
      await mkdir(join(dir, `${DEAD}-abc`));
      await writeFile(join(dir, `${DEAD}-abc`, "f"), "x");
      await mkdir(join(dir, `${process.pid}-mine`));
      await writeFile(join(dir, "unrelated"), "x");
      const removed = await sweepDeadPidEntries(dir, (n) => {
        const m = /^(\d+)-/.exec(n);
        return m ? Number(m[1]) : undefined;
      });
      expect(removed).toEqual([`${DEAD}-abc`]);
      expect((await readdir(dir)).sort()).toEqual([`${process.pid}-mine`, "unrelated"].sort());
      expect(await sweepDeadPidEntries(join(dir, "missing"), () => DEAD)).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("should end a sleep early, without rejecting, when its signal aborts", async () => {
    const ac = new AbortController();
    const t0 = performance.now();
    const done = sleep(10_000, ac.signal);
    ac.abort();
    await done;
    expect(performance.now() - t0).toBeLessThan(1000);
  });
});
