import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { namespaceReplaced, rootlessError } from "./rootless.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "lazypulld-rootless-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("rootlessError", () => {
  it("should give each missing prerequisite the daemon's own code, with the fix in the message", () => {
    expect(rootlessError({ missing: "subids", message: "no ids; usermod …", context: { user: "u", file: "/etc/subuid" } })).toMatchObject({
      code: "DAEMON_ROOTLESS_NO_SUBIDS",
      message: "no ids; usermod …",
      context: { user: "u", file: "/etc/subuid" },
    });
    expect(rootlessError({ missing: "podman", message: "m", context: {} }).code).toBe("DAEMON_ROOTLESS_NO_PODMAN");
    expect(rootlessError({ missing: "fuse-device", message: "m", context: {} }).code).toBe("DAEMON_ROOTLESS_NO_FUSE_DEVICE");
    expect(rootlessError({ missing: "fusermount", message: "m", context: {} }).code).toBe("DAEMON_ROOTLESS_NO_FUSERMOUNT");
  });
});

describe("namespaceReplaced", () => {
  it("should say no for our own namespace, a dead pause process or none, and yes for another mount namespace", async () => {
    const file = join(dir, "pause.pid");
    expect(await namespaceReplaced(join(dir, "no-such.pid"))).toBe(false);
    await writeFile(file, `${process.pid}\n`);
    expect(await namespaceReplaced(file)).toBe(false);
    await writeFile(file, "999999999\n");
    expect(await namespaceReplaced(file)).toBe(false);
    // a process in a mount namespace of its own stands for podman's new pause process (unshare needs root)
    if (process.getuid?.() !== 0) return;
    const other = spawn("unshare", ["--mount", "sleep", "5"], { stdio: "ignore" });
    try {
      // unshare execs sleep in the new namespace: same pid
      for (let i = 0; i < 40 && !readFileSync(`/proc/${other.pid}/cmdline`, "utf8").startsWith("sleep"); i++) await new Promise((r) => setTimeout(r, 50));
      await writeFile(file, `${other.pid}\n`);
      expect(await namespaceReplaced(file)).toBe(true);
    } finally {
      other.kill("SIGKILL");
    }
  });
});
