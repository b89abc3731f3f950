import { describe, expect, it } from "vitest";
import { parseSize } from "./parse-size.js";

describe("parseSize", () => {
  it("should read decimal, binary and bare units", () => {
    const inputs = ["512", "0", "1B", "1kB", "1MB", "10GiB", "1.5KiB", "2g", " 3 MiB ", "1TB", "64k"];
    expect(inputs.map(parseSize)).toEqual([512, 0, 1, 1000, 1_000_000, 10 * 2 ** 30, 1536, 2 * 2 ** 30, 3 * 2 ** 20, 1e12, 65536]);
  });

  it("should reject what is not a size with BLOBCACHE_BAD_SIZE", () => {
    for (const bad of ["", "ten", "-1", "1XB", "1e9", "1..2MB", "99999999999TiB"]) {
      expect(() => parseSize(bad), bad).toThrowError(expect.objectContaining({ code: "BLOBCACHE_BAD_SIZE", context: { input: bad } }));
    }
  });
});
