import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findInner, rootlessProblem, watchOuter } from "./podman-unshare.js";

const OUTER_ENV = "TEST_ROOTLESS_OUTER";

let dir: string;

function findChild(pid: number): number | undefined {
  try {
    const c = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/)[0];
    return c ? Number(c) : undefined;
  } catch {
    return undefined;
  }
}
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "host-rootless-"));
  for (const name of ["podman", "fusermount3"]) {
    await writeFile(join(dir, name), "#!/bin/sh\n");
    await chmod(join(dir, name), 0o755);
  }
  await writeFile(join(dir, "subuid"), "someone:100000:65536\nu:165536:65536\n");
  await writeFile(join(dir, "empty"), "");
  await writeFile(join(dir, "fuse"), "");
  await chmod(join(dir, "fuse"), 0o666);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("rootlessProblem", () => {
  const host = () => ({ user: "u", uid: 1001, subidFiles: [join(dir, "subuid"), join(dir, "subuid")], fuseDevice: join(dir, "fuse") });

  it("should find nothing wrong on a host with podman, subordinate ids, /dev/fuse and fusermount3", () => {
    expect(rootlessProblem("lazypull", { PATH: dir }, "podman", host())).toBeUndefined();
  });

  it("should name each missing prerequisite", () => {
    expect(rootlessProblem("lazypull", { PATH: "/nonexistent" }, "podman", host())).toMatchObject({ missing: "podman" });
    expect(rootlessProblem("lazypull", { PATH: dir }, "podman", { ...host(), subidFiles: [join(dir, "subuid"), join(dir, "empty")] })).toMatchObject({
      missing: "subids",
      context: { user: "u", file: join(dir, "empty") },
    });
    expect(rootlessProblem("lazypull", { PATH: dir }, "podman", { ...host(), fuseDevice: join(dir, "no-fuse") })).toMatchObject({ missing: "fuse-device" });
    expect(rootlessProblem("lazypull", { PATH: dir }, join(dir, "podman"), host())).toBeUndefined();
    expect(rootlessProblem("lazypull", { PATH: "" }, join(dir, "podman"), host())).toMatchObject({ missing: "fusermount" });
  });
});

describe("findInner", () => {
  it("should find our executable among the grandchildren, as when podman unshare runs itself again first", async () => {
    // sh → sh → node: the middle shell stands for the podman that creates the namespace
    const outer = spawn("sh", ["-c", `sh -c '"${process.execPath}" -e "setTimeout(() => {}, 5000)"; true'; true`], { stdio: "ignore" });
    try {
      let inner: number | undefined;
      for (let i = 0; i < 50 && inner === undefined; i++) {
        await new Promise((r) => setTimeout(r, 100));
        inner = findInner(outer.pid!);
      }
      expect(inner).toBeGreaterThan(0);
      process.kill(inner!, "SIGTERM");
    } finally {
      outer.kill("SIGKILL");
    }
  });
});

describe("watchOuter", () => {
  const inside = { _CONTAINERS_ROOTLESS_UID: "1001", _CONTAINERS_USERNS_CONFIGURED: "done" };

  it("should call stop once the outer process has died, and never for a process outside that setup", async () => {
    const outer = spawn("sleep", ["0.3"], { stdio: "ignore" });
    let stopped = 0;
    const unwatch = await watchOuter(() => stopped++, OUTER_ENV, { ...inside, [OUTER_ENV]: String(outer.pid) }, { intervalMs: 50, uid: 0 });
    await new Promise((r) => outer.once("exit", r));
    await new Promise((r) => setTimeout(r, 300));
    unwatch();
    expect(stopped).toBe(1);

    let other = 0;
    // not inside podman unshare (uid 1001), or no outer named: nothing to watch
    await watchOuter(() => other++, OUTER_ENV, { ...inside, [OUTER_ENV]: "999999999" }, { intervalMs: 50, uid: 1001 });
    await watchOuter(() => other++, OUTER_ENV, inside, { intervalMs: 50, uid: 0 });
    await new Promise((r) => setTimeout(r, 200));
    expect(other).toBe(0);
  });

  it("should count an outer process that died but was not reaped yet (a zombie) as gone", async () => {
    // `sleep 0.2` is the shell's child; the shell then becomes `sleep 5`, which never reaps it
    const parent = spawn("sh", ["-c", "sleep 0.2 & exec sleep 5"], { stdio: "ignore" });
    try {
      let zombie: number | undefined;
      for (let i = 0; i < 30 && zombie === undefined; i++) {
        await new Promise((r) => setTimeout(r, 50));
        zombie = findChild(parent.pid!);
      }
      await new Promise((r) => setTimeout(r, 400));
      expect(readFileSync(`/proc/${zombie}/stat`, "utf8")).toMatch(/\) Z /);
      let stopped = 0;
      const unwatch = await watchOuter(() => stopped++, OUTER_ENV, { ...inside, [OUTER_ENV]: String(zombie) }, { intervalMs: 50, uid: 0 });
      await new Promise((r) => setTimeout(r, 600));
      unwatch();
      expect(stopped).toBe(1);
    } finally {
      parent.kill("SIGKILL");
    }
  });

  it("should stop at once when the outer process is already gone", async () => {
    let stopped = 0;
    await watchOuter(() => stopped++, OUTER_ENV, { ...inside, [OUTER_ENV]: "999999999" }, { intervalMs: 50, uid: 0 });
    expect(stopped).toBe(1);
  });
});

