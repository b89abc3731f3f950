import type { ChildProcess } from "node:child_process";
import { spawnSource } from "@lazypull/testkit";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isMountPoint } from "@lazypull/host";
import { cleanStaleMount } from "../src/index.js";


/** Starts a process that mounts at `mnt`; resolves once it says so. */
function startChild(mnt: string, cacheDir: string, mode: "signals" | "plain"): Promise<ChildProcess> {
  const child = spawnSource(join(import.meta.dirname, "helpers/mount-child.ts"), [mnt, cacheDir, mode], { stdio: ["ignore", "pipe", "pipe"] });
  return new Promise((res, rej) => {
    let err = "";
    child.stderr!.on("data", (b: Buffer) => (err += b.toString()));
    child.stdout!.on("data", (b: Buffer) => {
      if (b.toString().includes("mounted")) res(child);
    });
    child.on("exit", (code) => rej(new Error(`mount child exited ${code}: ${err}`)));
  });
}

const exited = (c: ChildProcess) =>
  new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => {
    if (c.exitCode !== null || c.signalCode !== null) return r({ code: c.exitCode, signal: c.signalCode });
    c.once("exit", (code, signal) => r({ code, signal }));
  });

describe("mount hygiene", () => {
  let tmp: string;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), "lazypull-fusefs-hygiene-"));
  });

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    for (const d of ["a", "b", "c"]) await cleanStaleMount(join(tmp, d), { force: true }).catch(() => undefined);
    await rm(tmp, { recursive: true, force: true });
  });

  it("should unmount when the serving process gets SIGTERM, and end that process by the signal", async () => {
    const mnt = join(tmp, "a");
    await mkdir(mnt);
    const child = await startChild(mnt, join(tmp, "cache-a"), "signals");
    children.push(child);
    expect(await isMountPoint(mnt)).toBe(true);
    child.kill("SIGTERM");
    expect(await exited(child)).toEqual({ code: null, signal: "SIGTERM" });
    expect(await isMountPoint(mnt)).toBe(false);
  });

  it("should leave no usable mount behind a killed process, and clean a stale one", async () => {
    const mnt = join(tmp, "b");
    await mkdir(mnt);
    const child = await startChild(mnt, join(tmp, "cache-b"), "plain");
    children.push(child);
    child.kill("SIGKILL");
    await exited(child);
    // auto_unmount lets fusermount detach it; if it has not yet, the mount is stale and gets cleaned
    for (let i = 0; i < 50 && (await isMountPoint(mnt)); i++) await new Promise((r) => setTimeout(r, 20));
    const cleaned = await cleanStaleMount(mnt);
    expect(await isMountPoint(mnt)).toBe(false);
    expect(await readdir(mnt)).toEqual([]);
    console.log(`after SIGKILL: ${cleaned ? "stale mount cleaned" : "auto_unmount had already detached it"}`);
  });

  it("should leave a live mount alone unless forced, and detach it when forced", async () => {
    const mnt = join(tmp, "c");
    await mkdir(mnt);
    const child = await startChild(mnt, join(tmp, "cache-c"), "plain");
    children.push(child);
    expect(await cleanStaleMount(mnt)).toBe(false);
    expect(await isMountPoint(mnt)).toBe(true);
    expect(await cleanStaleMount(mnt, { force: true })).toBe(true);
    expect(await isMountPoint(mnt)).toBe(false);
    child.kill("SIGKILL");
    await exited(child);
  });
});
