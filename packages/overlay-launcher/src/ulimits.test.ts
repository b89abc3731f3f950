import { describe, expect, it } from "vitest";
import { clampUlimits, parseProcLimits, parseUlimit, readHostLimits, ulimitArgs } from "./ulimits.js";

const PROC_LIMITS = `Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max stack size            8388608              unlimited            bytes     
Max processes             96365                96365                processes 
Max open files            1024                 2048                 files     
Max nice priority         0                    0                    
`;

describe("ulimits", () => {
  it("should parse /proc/PID/limits rows by podman ulimit name, unlimited as Infinity", () => {
    expect(parseProcLimits(PROC_LIMITS)).toEqual({
      cpu: { soft: Infinity, hard: Infinity },
      stack: { soft: 8388608, hard: Infinity },
      nproc: { soft: 96365, hard: 96365 },
      nofile: { soft: 1024, hard: 2048 },
      nice: { soft: 0, hard: 0 },
    });
  });

  it("should read this process's own limits", async () => {
    const limits = await readHostLimits();
    expect(limits.nofile!.hard).toBeGreaterThan(0);
    expect(limits.nofile!.soft).toBeLessThanOrEqual(limits.nofile!.hard);
  });

  it("should parse SOFT:HARD, N and unlimited, and refuse malformed specs", () => {
    expect(["4096:8192", "4096", "unlimited", "1:unlimited", "-1"].map(parseUlimit)).toEqual([
      { soft: 4096, hard: 8192 }, { soft: 4096, hard: 4096 }, { soft: Infinity, hard: Infinity }, { soft: 1, hard: Infinity }, { soft: Infinity, hard: Infinity },
    ]);
    expect(["", "a", "1:2:3", "8:4", "1:", "1.5", "0x10"].map(parseUlimit)).toEqual(Array(7).fill(undefined));
  });

  it("should clamp to the host's hard limit, soft never above hard, and say what it changed", () => {
    const host = parseProcLimits(PROC_LIMITS);
    expect(
      clampUlimits({ nofile: { soft: 4096, hard: 4096 }, nproc: { soft: 4096, hard: 4096 }, stack: { soft: Infinity, hard: Infinity }, rtprio: { soft: 5, hard: 5 } }, host),
    ).toEqual([
      { name: "nofile", soft: 2048, hard: 2048, clampedFrom: { soft: 4096, hard: 4096 } },
      { name: "nproc", soft: 4096, hard: 4096 },
      { name: "stack", soft: Infinity, hard: Infinity },
      { name: "rtprio", soft: 5, hard: 5 },
    ]);
  });

  it("should render --ulimit flags with -1 for unlimited", () => {
    expect(ulimitArgs([{ name: "nofile", soft: 1024, hard: 2048 }, { name: "core", soft: Infinity, hard: Infinity }])).toEqual([
      "--ulimit", "nofile=1024:2048", "--ulimit", "core=-1:-1",
    ]);
  });
});
