import { describe, expect, it } from "vitest";
import { hostUid, inRootlessNamespace, inUserNamespace, isRootless } from "./rootless.js";

describe("who lazypull acts for", () => {
  const unshare = { _CONTAINERS_ROOTLESS_UID: "1001", _CONTAINERS_USERNS_CONFIGURED: "done" };

  it("should take the user podman names inside `podman unshare`, the real uid elsewhere", () => {
    expect(hostUid(unshare, 0)).toBe(1001);
    expect(hostUid({}, 0)).toBe(0);
    expect(hostUid({}, 1001)).toBe(1001);
    // a leaked variable does not make root rootless outside a configured namespace
    expect(hostUid({ _CONTAINERS_ROOTLESS_UID: "1001" }, 0)).toBe(0);
  });

  it("should tell a rootless user, and whether it is inside podman's namespace", () => {
    expect([isRootless({}, 1001), inRootlessNamespace({}, 1001)]).toEqual([true, false]);
    expect([isRootless(unshare, 0), inRootlessNamespace(unshare, 0)]).toEqual([true, true]);
    expect([isRootless({}, 0), inRootlessNamespace({}, 0)]).toEqual([false, false]);
  });

  it("should read a user namespace from the uid map", () => {
    expect(inUserNamespace("         0          0 4294967295\n")).toBe(false);
    expect(inUserNamespace("         0       1001          1\n         1     100000      65536\n")).toBe(true);
  });
});
