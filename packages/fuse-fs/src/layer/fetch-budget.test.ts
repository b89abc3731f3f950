import { describe, expect, it } from "vitest";
import { FetchBudget } from "./fetch-budget.js";

const tick = () => new Promise((r) => setTimeout(r, 1));

describe("FetchBudget", () => {
  it("should grant what fits at once and make the rest wait for a release", async () => {
    const b = new FetchBudget(100);
    const r1 = await b.acquire(60, "background");
    let second = false;
    const p = b.acquire(60, "background").then((r) => ((second = true), r));
    await tick();
    expect({ second, inUse: b.inUse }).toEqual({ second: false, inUse: 60 });
    r1();
    r1(); // a second release gives nothing back twice
    (await p)();
    expect({ second, inUse: b.inUse }).toEqual({ second: true, inUse: 0 });
  });

  it("should serve waiting on-demand requests before background ones", async () => {
    const b = new FetchBudget(100);
    const held = await b.acquire(100, "demand");
    const order: string[] = [];
    const bg = b.acquire(10, "background").then((r) => (order.push("background"), r));
    const dm = b.acquire(10, "demand").then((r) => (order.push("demand"), r));
    await tick();
    held();
    (await dm)();
    (await bg)();
    expect(order).toEqual(["demand", "background"]);
  });

  it("should clamp a request larger than the budget, so it runs alone instead of never", async () => {
    const b = new FetchBudget(100);
    const r = await b.acquire(10_000, "demand");
    expect(b.inUse).toBe(100);
    r();
    expect(() => new FetchBudget(0)).toThrow(expect.objectContaining({ code: "FUSEFS_INVALID" }));
  });
});
