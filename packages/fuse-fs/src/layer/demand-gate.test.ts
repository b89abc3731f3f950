import { describe, expect, it } from "vitest";
import { DemandGate } from "./demand-gate.js";

describe("DemandGate", () => {
  it("should hold background work while a read is pending and for the silence after it", async () => {
    let now = 0;
    const gate = new DemandGate(1000, () => now);
    let quiet = false;
    let release!: () => void;
    const reading = gate.demand(() => new Promise<void>((r) => (release = r)));
    const waiting = gate.whenQuiet().then(() => (quiet = true));
    await new Promise((r) => setTimeout(r, 5));
    expect(quiet).toBe(false); // a read is pending
    now = 400;
    release();
    await reading;
    await new Promise((r) => setTimeout(r, 5));
    expect(quiet).toBe(false); // the read ended at 400: quiet at 1400
    now = 1400;
    await waiting; // its timer re-checks the clock
    expect(quiet).toBe(true);
  });

  it("should count a touch (a layer just opened) as activity, and with silence 0 wait only for pending reads", async () => {
    let now = 0;
    const gate = new DemandGate(500, () => now);
    now = 600;
    await gate.whenQuiet(); // 600 ms after creation: quiet
    gate.touch();
    let quiet = false;
    const waiting = gate.whenQuiet().then(() => (quiet = true));
    await new Promise((r) => setTimeout(r, 5));
    expect(quiet).toBe(false);
    now = 1100;
    await waiting;
    const none = new DemandGate(0, () => now);
    await none.whenQuiet();
    await none.whenIdle();
  });

  it("should stop waiting when aborted", async () => {
    const gate = new DemandGate(60_000);
    const ac = new AbortController();
    const waiting = gate.whenQuiet(ac.signal);
    ac.abort();
    await waiting;
  });
});
