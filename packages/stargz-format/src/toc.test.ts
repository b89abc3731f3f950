import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { normalizeName, normalizeQuery } from "./toc.js";

/** The definition: drop empty and `.` components, refuse `..` and NUL. */
function reference(raw: string): string | undefined {
  if (raw.includes("\0")) return undefined;
  const parts: string[] = [];
  for (const p of raw.split("/")) {
    if (p === "" || p === ".") continue;
    if (p === "..") return undefined;
    parts.push(p);
  }
  return parts.join("/");
}

describe("normalizeName", () => {
  it("should normalise the names real layers use and refuse escapes", () => {
    const names = ["", "/", "./", ".", "usr/bin/", "./usr//bin/./sh", "/etc/hosts", "a", ".a", "..a", "a..", "...", "a/.b/c", "a/../b", "..", "../x", "x/..", "a\0b", "a/./"];
    expect(names.map(normalizeQuery)).toEqual(names.map(normalizeName));
    expect(names.map(normalizeName)).toEqual(["", "", "", "", "usr/bin", "usr/bin/sh", "etc/hosts", "a", ".a", "..a", "a..", "...", "a/.b/c", undefined, undefined, undefined, undefined, undefined, "a"]);
  });

  it("should agree with the component-by-component definition on any name (fast paths and the query variant included)", () => {
    const name = fc.array(fc.constantFrom("a", "b", ".", "..", "/", "//", "\0", "é"), { maxLength: 10 }).map((p) => p.join(""));
    fc.assert(
      fc.property(name, (raw) => {
        expect([normalizeName(raw), normalizeQuery(raw)]).toEqual([reference(raw), reference(raw)]);
      }),
      { numRuns: 2000, seed: 7 },
    );
  });
});
