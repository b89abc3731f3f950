import { describe, expect, it } from "vitest";
import { DEFAULT_STORE_DIR, defaultStoreDir } from "./default-dir.js";

describe("defaultStoreDir", () => {
  it("should be root's system store for root, and the user's data dir for anyone else, also inside podman unshare", () => {
    const inside = { _CONTAINERS_ROOTLESS_UID: "1001", _CONTAINERS_USERNS_CONFIGURED: "done", HOME: "/home/u" };
    expect([
      defaultStoreDir({ HOME: "/root" }, 0),
      defaultStoreDir({ HOME: "/home/u" }, 1001),
      defaultStoreDir({ HOME: "/home/u", XDG_DATA_HOME: "/data" }, 1001),
      defaultStoreDir({ HOME: "/home/u", XDG_DATA_HOME: "relative" }, 1001),
      defaultStoreDir(inside, 0),
    ]).toEqual([DEFAULT_STORE_DIR, "/home/u/.local/share/lazypull/store", "/data/lazypull/store", "/home/u/.local/share/lazypull/store", "/home/u/.local/share/lazypull/store"]);
  });
});
