import { describe, expect, it } from "vitest";
import { parseMountinfo, readMounts } from "./mounts.js";

describe("mountinfo", () => {
  it("should parse mount points, fs types and sources, unescaping octal", () => {
    const text = [
      "22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/sda1 rw",
      "42 27 0:39 / /tmp/a\\040b/merged rw,nodev,noatime - fuse.fuse-overlayfs fuse-overlayfs rw,user_id=0",
      "43 27 0:40 / /run/x rw master:3 shared:9 - fuse lazypull rw",
      "garbage",
      "",
    ].join("\n");
    expect(parseMountinfo(text)).toEqual([
      { mountPoint: "/", fsType: "ext4", source: "/dev/sda1" },
      { mountPoint: "/tmp/a b/merged", fsType: "fuse.fuse-overlayfs", source: "fuse-overlayfs" },
      { mountPoint: "/run/x", fsType: "fuse", source: "lazypull" },
    ]);
  });

  it("should read this process's mounts, the root among them", async () => {
    expect((await readMounts()).some((m) => m.mountPoint === "/")).toBe(true);
  });
});
