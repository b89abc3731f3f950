import { describe, expect, it } from "vitest";
import { KERNEL_MAX_LOWERS, kernelOverlayOptionString, mountKernelOverlay } from "./kernel-overlay.js";

describe("kernel overlay options", () => {
  it("should name lowers by short links relative to the state dir, top-most first, then lazypull's and the host's options", () => {
    expect(kernelOverlayOptionString({ lowerDirs: ["/very/long/top", "/very/long/base"], extraOptions: ["volatile"] }, false)).toBe(
      "lowerdir=l/0:l/1,upperdir=upper,workdir=work,index=off,xino=off,redirect_dir=on,metacopy=on,volatile",
    );
  });

  it("should keep overlayfs' xattrs in user.* and leave redirect_dir and metacopy off in a user namespace", () => {
    expect(kernelOverlayOptionString({ lowerDirs: ["/top", "/base"], extraOptions: [] }, true)).toBe(
      "lowerdir=l/0:l/1,upperdir=upper,workdir=work,index=off,xino=off,userxattr",
    );
  });

  it("should fit overlayfs' maximum stack into the kernel's one-page option limit whatever the paths are", () => {
    const lowers = Array.from({ length: KERNEL_MAX_LOWERS }, (_, i) => `/run/lazypull/containers/0123456789ab/layers/${"f".repeat(64)}${i}.overlay`);
    expect(Buffer.byteLength(kernelOverlayOptionString({ lowerDirs: lowers, extraOptions: [] }))).toBeLessThan(4096);
  });

  it("should refuse more layers than overlayfs stacks, with a typed error", async () => {
    const lowers = Array.from({ length: KERNEL_MAX_LOWERS + 1 }, (_, i) => `/l${i}`);
    await expect(mountKernelOverlay({ lowerDirs: lowers, stateDir: "/nonexistent", merged: "/m", extraOptions: [] })).rejects.toMatchObject({
      code: "OVERLAY_TOO_MANY_LAYERS",
      context: { layers: KERNEL_MAX_LOWERS + 1, limit: KERNEL_MAX_LOWERS },
    });
  });
});
