import { describe, expect, it } from "vitest";
import { ByteLru, ENTRY_OVERHEAD } from "./byte-lru.js";

describe("ByteLru", () => {
  it("should keep a compact copy of a small view into a large buffer", () => {
    const big = Buffer.alloc(1 << 20, 7);
    const lru = new ByteLru<string>(1024);
    lru.set("a", big.subarray(10, 110));
    const got = lru.get("a")!;
    expect(got).toEqual(Buffer.alloc(100, 7));
    expect(got.buffer.byteLength).toBeLessThan(big.length);
    expect(lru.size).toBe(100 + ENTRY_OVERHEAD);
  });

  it("should keep within its byte bound, counting each entry's overhead, evicting the least recently used", () => {
    const lru = new ByteLru<string>(2 * (4 + ENTRY_OVERHEAD) + 2);
    lru.set("a|1", Buffer.alloc(4));
    lru.set("b|1", Buffer.alloc(4));
    lru.get("a|1");
    lru.set("a|2", Buffer.alloc(4));
    expect({ a1: lru.has("a|1"), b1: lru.has("b|1"), a2: lru.has("a|2"), size: lru.size }).toEqual({ a1: true, b1: false, a2: true, size: 2 * (4 + ENTRY_OVERHEAD) });
    lru.deletePrefix("a|");
    expect(lru.size).toBe(0);
  });

  it("should not keep an entry larger than the whole bound", () => {
    const lru = new ByteLru<string>(1000);
    lru.set("big", Buffer.alloc(1000));
    expect([lru.has("big"), lru.size]).toEqual([false, 0]);
  });
});
