import { spawn } from "node:child_process";
import { openSync, closeSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { childCommand, inheritableFds, withoutFds } from "./child-fds.js";

/** the descriptors a child sees, from its own /proc/self/fd (3 and up, less the one `ls` opens) */
function childFds(cmd: string, args: string[]): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (b: Buffer) => (out += b.toString()));
    child.on("error", reject);
    child.on("close", () => resolve(out.split(/\s+/).filter(Boolean).map(Number).filter((n) => n >= 3)));
  });
}

describe("children without this process's inheritable descriptors", () => {
  it("should list no descriptors when everything is close-on-exec (Node opens its own that way)", async () => {
    const fd = openSync("/dev/null", "r");
    try {
      expect(await inheritableFds()).not.toContain(fd);
    } finally {
      closeSync(fd);
    }
  });

  it("should close the given descriptors in the child and run the command as itself", async () => {
    // bash's own `exec 9<…` leaves an inheritable descriptor 9 behind for the inner command: the same
    // situation as libfuse's /dev/fuse in our process
    const leaking = await childFds("/bin/bash", ["-c", "exec 9</dev/null; exec 11</dev/null; ls /proc/self/fd"]);
    expect(leaking).toEqual(expect.arrayContaining([9, 11]));
    const inner = withoutFds("ls", ["/proc/self/fd"], [9, 11]);
    const closed = await childFds("/bin/bash", ["-c", `exec 9</dev/null; exec 11</dev/null; exec "$@"`, "x", inner.cmd, ...inner.args]);
    expect(closed.filter((fd) => fd === 9 || fd === 11)).toEqual([]);
  });

  it("should leave the command as it is when nothing leaks or the command does not exist", async () => {
    expect(withoutFds("podman", ["ps"], [])).toEqual({ cmd: "podman", args: ["ps"] });
    expect(await childCommand("/no/such/binary", ["x"])).toEqual({ cmd: "/no/such/binary", args: ["x"] });
  });
});
