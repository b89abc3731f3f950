import { describe, expect, it } from "vitest";
import type { ContenderId, Sample } from "./contenders.js";
import { CONTENDER_LABEL, markdown, readmeSection, summarise, svgChart, type BenchResult } from "./report.js";

// made-up figures: only their arithmetic matters here
const sample = (workload: string, contender: ContenderId, rep: number, firstOutputMs: number): Sample => ({
  workload,
  contender,
  rep,
  firstOutputMs,
  totalMs: firstOutputMs + 100,
  bytesAtFirstOutput: 1e6,
  requestsAtFirstOutput: 5,
  bytesTotal: 2e6,
  requestsTotal: 6,
  imageBytes: 10e6,
  breakdown: contender === "podman-pull-run" ? { pull: firstOutputMs - 200, run: 200 } : { startup: 300 },
});

const workload = (id: string, title: string) => ({ id, title, command: ["true"], originalBytes: 10e6, estargzBytes: 11e6, convertOverLinkMs: 1000 });

function result(profile: BenchResult["profile"], samples: Sample[]): BenchResult {
  return {
    date: "2026-12-01T00:00:00.000Z",
    profile,
    reps: 3,
    pageCache: "dropped",
    host: { cpus: 2, load: [1, 1, 1] },
    workloads: [workload("minbase", "Debian bookworm minbase"), workload("python", "Debian + python3")],
    samples,
  } as BenchResult;
}

const reps = (workload: string, contender: ContenderId, ms: number[]) => ms.map((m, i) => sample(workload, contender, i + 1, m));

const fast = result({ name: "100mbit/20ms-rtt", rateMbit: 100, rttMs: 20 }, [
  ...reps("minbase", "podman-pull-run", [9000, 9100, 9200]),
  // median 1.00 s: under 0.65 × 1.65 s = 1.0725 s
  ...reps("minbase", "lazypull-landmark", [900, 1000, 1500]),
  // median 1.10 s: over it
  ...reps("minbase", "lazypull-daemon", [1100, 1100, 1000]),
  ...reps("python", "podman-pull-run", [11000, 11000, 11000]),
  // median 1.50 s: over 0.65 × 2.18 s = 1.417 s
  ...reps("python", "lazypull-landmark", [1500, 1500, 1400]),
]);

const slow = result({ name: "20mbit/50ms-rtt", rateMbit: 20, rttMs: 50 }, [
  ...reps("minbase", "podman-pull-run", [30000, 28000, 29000]),
  // limit 0.06 × 29 s = 1.74 s
  ...reps("minbase", "lazypull-landmark", [1700, 1800, 1600]),
  ...reps("minbase", "podman-lazypulld", [2000, 2100, 1900]),
  ...reps("python", "podman-pull-run", [35000, 35000, 35000]),
  ...reps("python", "lazypull-daemon", [2000, 2000, 2000]),
]);

const row = (r: BenchResult, w: string, c: ContenderId) => summarise(r).find((x) => x.workload === w && x.contender === c)!;

describe("issue 15's target per row", () => {
  it("should compare a lazypull row's median with 0.65× the reference at 100mbit/20ms-rtt", () => {
    expect(row(fast, "minbase", "lazypull-landmark").target).toMatchObject({ limitMs: expect.closeTo(1072.5, 6) as number, met: true });
    expect(row(fast, "minbase", "lazypull-daemon").target).toMatchObject({ met: false });
    expect(row(fast, "python", "lazypull-landmark").target).toMatchObject({ limitMs: expect.closeTo(1417, 6) as number, met: false });
  });

  it("should compare a lazypull row's median with 0.06× this run's full pull at 20mbit/50ms-rtt", () => {
    expect(row(slow, "minbase", "lazypull-landmark").target).toMatchObject({ limitMs: expect.closeTo(1740, 6) as number, met: true });
    expect(row(slow, "minbase", "podman-lazypulld").target).toMatchObject({ met: false });
    expect(row(slow, "python", "lazypull-daemon").target).toMatchObject({ limitMs: expect.closeTo(2100, 6) as number, met: true });
  });

  it("should set no target on the full pull itself, nor without a full pull on the slow link", () => {
    expect(row(slow, "minbase", "podman-pull-run").target).toBeUndefined();
    const noPull = result(slow.profile, reps("minbase", "lazypull-landmark", [1000, 1000, 1000]));
    expect(row(noPull, "minbase", "lazypull-landmark").target).toBeUndefined();
  });
});

describe("markdown", () => {
  const lines = (md: string) => md.split("\n");
  it("should put the reference under the full pull, with its own full pull, and mark each lazypull row", () => {
    const md = lines(markdown(fast));
    const minbase = md.filter((l) => l.startsWith("| Debian bookworm minbase |"));
    expect(minbase[0]).toContain("podman pull + run");
    expect(minbase[1]).toContain("measured separately (not built or shipped by lazypull)");
    expect(minbase[1]).toContain("– / 1.65 s | 0.211 of its own full pull (7.82 s)");
    expect(minbase[2]).toContain("| ✓ meets ≤ 1.07 s (0.65× reference) |");
    expect(minbase[3]).toContain("| ✗ misses ≤ 1.07 s (0.65× reference) |");
    expect(md.find((l) => l.startsWith("| Debian + python3 |") && l.includes("Go reference"))).toContain("– / 2.18 s | 0.235 of its own full pull (9.26 s)");
    expect(md).toContain("Target (issue 15): lazypull's first output ≤ 0.65× the reference's at 100mbit/20ms-rtt (≤ 1.07 s Debian bookworm minbase, ≤ 1.42 s Debian + python3) and ≤ 0.06× the full pull at 20mbit/50ms-rtt; the \"target\" column checks each lazypull row's median against it.");
  });

  it("should render the 20mbit table with its ratios, the reference's 20mbit figures and the full-pull target", () => {
    const md = lines(markdown(slow));
    expect(md[0]).toContain("Profile **20mbit/50ms-rtt**");
    const minbase = md.filter((l) => l.startsWith("| Debian bookworm minbase |"));
    expect(minbase).toHaveLength(4);
    expect(minbase[1]).toContain("– / 2.77 s | — (no full pull figure)");
    expect(minbase[2]).toContain("| 0.059 (17.1× faster) | ✓ meets ≤ 1.74 s (0.06× full pull) |");
    expect(minbase[3]).toContain("| ✗ misses ≤ 1.74 s (0.06× full pull) |");
    const python = md.filter((l) => l.startsWith("| Debian + python3 |"));
    expect(python.map((l) => l.split(" | ")[1])).toEqual([
      "podman pull + run",
      "Go reference: stargz-store via podman's layer store, kernel overlayfs — measured separately (not built or shipped by lazypull)",
      "lazypull run with lazypulld running (layers from the daemon)",
    ]);
    expect(python[1]).toContain("– / 5.45 s");
  });

  it("should put the reference first when no full pull ran", () => {
    const md = markdown(result(fast.profile, reps("minbase", "lazypull-landmark", [1000, 1000, 1000])));
    const minbase = lines(md).filter((l) => l.startsWith("| Debian bookworm minbase |"));
    expect(minbase[0]).toContain("Go reference");
    expect(minbase[1]).toContain("— (no full pull in this run) | ✓ meets");
  });
});

describe("readmeSection", () => {
  it("should show both profiles' tables under their own headings, the slow one marked as a subset", () => {
    const section = readmeSection([
      { result: fast, chartFile: "bench/results/a.svg" },
      { result: slow, chartFile: "bench/results/b.svg" },
    ]);
    expect(section.indexOf("### 100mbit/20ms-rtt")).toBeLessThan(section.indexOf("### 20mbit/50ms-rtt"));
    expect(section).toContain("![time to first output](bench/results/b.svg)");
    expect(section.match(/A subset of the workloads and contenders/g)).toHaveLength(2); // neither made-up run has every contender
  });

  it("should not call a run with every contender a subset (the baselines are not part of a full run)", () => {
    const every = (Object.keys(CONTENDER_LABEL) as ContenderId[]).filter((c) => !c.endsWith("-baseline"));
    const full: BenchResult = { ...fast, samples: every.map((contender) => ({ ...fast.samples[0]!, contender })) };
    expect(readmeSection([{ result: full, chartFile: "bench/results/a.svg" }])).not.toContain("A subset");
  });
});

describe("svgChart", () => {
  it("should draw the reference's bar, labelled as measured separately", () => {
    expect(svgChart(slow)).toContain(">Go reference (measured separately)</text>");
    expect(svgChart(slow)).toContain(">5.45 s</text>");
  });
});
