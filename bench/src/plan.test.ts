import { describe, expect, it } from "vitest";
import { CONTENDERS, planRuns } from "./plan.js";

const flags = (f: { profile?: string; workloads?: string; contenders?: string } = {}) => ({ "no-extras": false, ...f });
const summary = (f: Parameters<typeof flags>[0]) => {
  const plan = planRuns(flags(f));
  return { readme: plan.readme, runs: plan.runs.map((r) => ({ profile: r.profile.name, workloads: r.workloads.map((w) => w.id), contenders: r.contenders, extras: r.extras, suffix: r.suffix })) };
};

describe("planRuns", () => {
  it("should run everything on the default link, then the slow link's subset, and update the README", () => {
    expect(summary({})).toEqual({
      readme: true,
      runs: [
        { profile: "100mbit/20ms-rtt", workloads: ["minbase", "python", "numpy"], contenders: [...CONTENDERS], extras: true, suffix: "" },
        { profile: "20mbit/50ms-rtt", workloads: ["minbase", "python"], contenders: ["podman-pull-run", "lazypull-landmark", "lazypull-daemon", "podman-lazypulld"], extras: false, suffix: "" },
      ],
    });
  });

  it("should run just the named profile, with everything, and leave the README alone", () => {
    expect(summary({ profile: "20mbit/50ms-rtt" })).toEqual({
      readme: false,
      runs: [{ profile: "20mbit/50ms-rtt", workloads: ["minbase", "python", "numpy"], contenders: [...CONTENDERS], extras: true, suffix: "" }],
    });
  });

  it("should narrow both profiles by --workloads and --contenders, and skip the slow link when nothing is left", () => {
    const s = summary({ contenders: "lazypull-landmark,lazypull-rootless" });
    expect(s.readme).toBe(false);
    expect(s.runs.map((r) => [r.profile, r.contenders, r.suffix])).toEqual([
      ["100mbit/20ms-rtt", ["lazypull-landmark", "lazypull-rootless"], "-lazypull-landmark+lazypull-rootless"],
      ["20mbit/50ms-rtt", ["lazypull-landmark"], "-lazypull-landmark"],
    ]);
    expect(summary({ workloads: "numpy" }).runs.map((r) => r.profile)).toEqual(["100mbit/20ms-rtt"]);
  });

  it("should run a baseline build right after lazypull-landmark, only when given one, and leave the README alone", () => {
    const base = { "baseline-cli": "/tmp/old/apps/cli/dist/lazypull.mjs" };
    const plan = planRuns({ ...flags({ profile: "100mbit/20ms-rtt", contenders: "podman-pull-run,lazypull-landmark" }), ...base });
    expect(plan.runs[0]!.contenders).toEqual(["podman-pull-run", "lazypull-landmark", "lazypull-baseline"]);
    expect(planRuns({ ...flags(), ...base }).readme).toBe(false);
    expect(planRuns(flags()).runs[0]!.contenders).not.toContain("lazypull-baseline");
    expect(() => planRuns(flags({ contenders: "lazypull-baseline" }))).toThrow(/needs --baseline-cli/);
    expect(() => planRuns({ ...flags({ contenders: "podman-pull-run" }), ...base })).toThrow(/choose it too/);
  });

  it("should run a baseline lazypulld right after lazypull-daemon, only when given one", () => {
    const base = { "baseline-daemon": "/tmp/old/apps/daemon/dist/main.js" };
    const plan = planRuns({ ...flags({ profile: "100mbit/20ms-rtt", contenders: "lazypull-landmark,lazypull-daemon" }), ...base });
    expect(plan.runs[0]!.contenders).toEqual(["lazypull-landmark", "lazypull-daemon", "lazypull-daemon-baseline"]);
    expect(planRuns({ ...flags(), ...base }).readme).toBe(false);
    expect(() => planRuns(flags({ contenders: "lazypull-daemon-baseline" }))).toThrow(/needs --baseline-daemon/);
    expect(() => planRuns({ ...flags({ contenders: "lazypull-landmark" }), ...base })).toThrow(/choose it too/);
  });

  it("should refuse unknown profiles, workloads and contenders", () => {
    expect(() => planRuns(flags({ profile: "1mbit" }))).toThrow(/unknown --profile 1mbit/);
    expect(() => planRuns(flags({ workloads: "perl" }))).toThrow(/unknown workload perl/);
    expect(() => planRuns(flags({ contenders: "docker" }))).toThrow(/unknown contender docker/);
  });
});
