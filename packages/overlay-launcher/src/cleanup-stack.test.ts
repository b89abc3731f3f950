import { describe, expect, it } from "vitest";
import { CleanupStack } from "./cleanup-stack.js";

describe("CleanupStack", () => {
  it("should run steps last-pushed-first, once, carrying on past failures", async () => {
    const s = new CleanupStack();
    const order: string[] = [];
    s.push("fuse", () => order.push("fuse"));
    s.push("overlay", async () => {
      order.push("overlay");
      throw new Error("busy");
    });
    s.push("state", () => order.push("state"));
    expect(await s.run()).toEqual([
      { label: "state", ok: true },
      { label: "overlay", ok: false, error: "busy" },
      { label: "fuse", ok: true },
    ]);
    expect(order).toEqual(["state", "overlay", "fuse"]);
    expect(await s.run()).toEqual([]);
  });

  it("should let a handle run its step early exactly once, or remove it unrun", async () => {
    const s = new CleanupStack();
    const order: string[] = [];
    const a = s.push("a", () => order.push("a"));
    const b = s.push("b", () => order.push("b"));
    s.push("c", () => order.push("c"));
    expect(await a.run()).toEqual({ label: "a", ok: true });
    expect(await a.run()).toBeUndefined();
    b.remove();
    expect(s.size).toBe(1);
    await s.run();
    expect(order).toEqual(["a", "c"]);
  });

  it("should make run() wait for a step already running through its handle", async () => {
    const s = new CleanupStack();
    let finished = false;
    const h = s.push("slow", () => new Promise<void>((r) => setTimeout(() => ((finished = true), r()), 50)));
    const early = h.run();
    await s.run();
    expect(finished).toBe(true);
    await early;
  });
});
