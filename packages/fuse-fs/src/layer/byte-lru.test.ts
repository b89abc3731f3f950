import { describe, expect, it } from "vitest";
import { ByteLru } from "./byte-lru.js";

describe("ByteLru", () => {
  it("should keep a compact copy of a small view into a large buffer", () => {
    const big = Buffer.alloc(1 << 20, 7);
    const lru = new ByteLru<string>(1024);
    lru.set("a", big.subarray(10, 110));
    const got = lru.get("a")!;
    expect(got).toEqual(Buffer.alloc(100, 7));
    expect(got.buffer.byteLength).toBeLessThan(big.length);
    expect(lru.size).toBe(100);
  });

  it("should evict least recently used entries past the byte cap", () => {
    const lru = new ByteLru<string>(250);
    for (const k of ["a", "b", "c"]) lru.set(k, Buffer.alloc(100));
    expect([lru.has("a"), lru.has("b"), lru.has("c"), lru.size]).toEqual([false, true, true, 200]);
  });
});
