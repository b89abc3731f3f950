import { describe, expect, it } from "vitest";
import { defaultCacheDir } from "./default-dir.js";

describe("defaultCacheDir", () => {
  it("should prefer LAZYPULL_CACHE_DIR, then root's /var/cache, then XDG_CACHE_HOME, then ~/.cache", () => {
    expect([
      defaultCacheDir({ LAZYPULL_CACHE_DIR: "/x/c", XDG_CACHE_HOME: "/xdg" }, 0),
      defaultCacheDir({ XDG_CACHE_HOME: "/xdg" }, 0),
      defaultCacheDir({ XDG_CACHE_HOME: "/xdg", HOME: "/home/u" }, 1000),
      defaultCacheDir({ HOME: "/home/u" }, 1000),
      defaultCacheDir({ XDG_CACHE_HOME: "relative", HOME: "/home/u" }, 1000),
    ]).toEqual(["/x/c", "/var/cache/lazypull", "/xdg/lazypull", "/home/u/.cache/lazypull", "/home/u/.cache/lazypull"]);
  });
});
