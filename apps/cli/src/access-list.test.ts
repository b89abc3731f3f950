import { describe, expect, it } from "vitest";
import { layerAccessesToImagePaths } from "./access-list.js";

const a = "a".repeat(64);
const b = "b".repeat(64);

describe("layerAccessesToImagePaths", () => {
  it("should strip layer prefixes, keep first-read order and drop repeats", () => {
    const log = [`${b}/usr/bin/python3.11`, `${a}/etc/ld.so.cache`, `${a}/usr/bin/python3.11`, "", `${b}/etc/ld.so.cache`, `${a}/lib/x86_64-linux-gnu/libc.so.6`].join("\n");
    expect(layerAccessesToImagePaths(log)).toEqual(["usr/bin/python3.11", "etc/ld.so.cache", "lib/x86_64-linux-gnu/libc.so.6"]);
  });

  it("should ignore lines that are not layer accesses", () => {
    expect(layerAccessesToImagePaths(`# comment\nnot-a-layer/etc/passwd\n${a}/etc/passwd\n`)).toEqual(["etc/passwd"]);
  });
});
