import { describe, expect, it } from "vitest";
import { lazyBreakdown, unionLength } from "./breakdown.js";
import type { RequestRecord } from "./delay-proxy.js";

const D = `sha256:${"a".repeat(64)}`;
const req = (at: number, doneAt: number, path: string, range?: string): RequestRecord => ({ at, doneAt, method: "GET", path, range, responseBytes: 0 });

describe("unionLength", () => {
  it("should count overlapping intervals once", () => {
    expect(unionLength([[0, 10], [5, 15], [20, 25]])).toEqual(20);
  });
});

describe("lazyBreakdown", () => {
  it("should split a start into startup, resolve, TOC, data reads and the rest", () => {
    const log = [
      req(1100, 1120, "/v2/"),
      req(1120, 1150, "/v2/r/manifests/t"),
      req(1150, 1200, `/v2/r/blobs/sha256:${"b".repeat(64)}`),
      req(1200, 1300, `/v2/r/blobs/${D}`, "bytes=900-999"),
      req(1500, 1600, `/v2/r/blobs/${D}`, "bytes=0-99"),
      req(1550, 1650, `/v2/r/blobs/${D}`, "bytes=100-199"),
      req(2500, 2600, `/v2/r/blobs/${D}`, "bytes=200-299"),
    ];
    expect(lazyBreakdown(log, 1000, 1800, new Map([[D, 1000]]))).toEqual({ startup: 100, resolve: 100, toc: 100, dataReads: 250, mountAndPodman: 1250 });
  });
});
