import type { ContenderId } from "./contenders.js";
import { PROFILES, type LinkProfile } from "./netns.js";
import { WORKLOADS, type Workload } from "./workloads.js";

/** Every contender, in the order each repetition runs them. */
export const CONTENDERS: readonly ContenderId[] = [
  "podman-pull-run",
  "lazypull-none",
  "lazypull-landmark",
  "lazypull-rootless",
  "lazypull-recorded",
  "lazypull-daemon",
  "podman-lazypulld",
  "podman-lazypulld-nosilence",
  "podman-lazypulld-none",
];

/**
 * `lazypull-landmark` run by another build's bin (`--baseline-cli PATH`), right after this checkout's in
 * each repetition: the two see the same link, registry and host load, which separate runs do not (their
 * medians move by ~0.1 s from run to run on this host, more than most changes). Only with that flag.
 */
export const BASELINE: ContenderId = "lazypull-baseline";
/** `lazypull-daemon` with another build's lazypulld (`--baseline-daemon PATH`), right after it: the same for daemon-side changes */
export const BASELINE_DAEMON: ContenderId = "lazypull-daemon-baseline";

export const DEFAULT_PROFILE = "100mbit/20ms-rtt";

/**
 * What a plain `pnpm bench` runs on the slower link after the default one. At 20 Mbit a full pull of
 * the numpy image (230 MB) takes ~95 s a repetition, so only the two small images, and only the
 * contenders a user would pick: the full pull, `lazypull run` at its defaults, plain podman through
 * lazypulld at its defaults, and `lazypull run` with lazypulld already running.
 */
export const SLOW_LINK_SUBSET = {
  profile: "20mbit/50ms-rtt",
  workloads: ["minbase", "python"],
  contenders: ["podman-pull-run", "lazypull-landmark", "podman-lazypulld", "lazypull-daemon"] as ContenderId[],
};

export interface ProfileRun {
  profile: LinkProfile;
  workloads: Workload[];
  contenders: ContenderId[];
  /** conversion throughput and sequential reads (one link is enough for them) */
  extras: boolean;
  /** appended to the result files' name: a side measurement (a contender subset the user chose) */
  suffix: string;
}

export interface BenchFlags {
  profile?: string;
  workloads?: string;
  contenders?: string;
  "no-extras": boolean;
  "baseline-cli"?: string;
  "baseline-daemon"?: string;
}

export interface Plan {
  runs: ProfileRun[];
  /** whether the runs are the full default plan, whose tables become the README's Benchmarks section */
  readme: boolean;
}

const byId = <T extends { id: string }>(all: T[], ids: string[], what: string): T[] =>
  ids.map((id) => {
    const x = all.find((y) => y.id === id);
    if (!x) throw new Error(`unknown ${what} ${id}; one of ${all.map((y) => y.id).join(", ")}`);
    return x;
  });

/**
 * The profiles one invocation runs. `--profile X`: just X, with the chosen (default: every) workload
 * and contender. No `--profile`: the default profile with the chosen workloads and contenders, then
 * the slower link with its subset (narrowed further by --workloads/--contenders; skipped when
 * nothing is left).
 */
export function planRuns(flags: BenchFlags): Plan {
  const workloadIds = flags.workloads?.split(",").filter(Boolean);
  const contenderIds = flags.contenders?.split(",").filter(Boolean);
  const workloads = byId(WORKLOADS, workloadIds ?? WORKLOADS.map((w) => w.id), "workload");
  const chosen = contenderIds
    ? byId([...CONTENDERS, BASELINE, BASELINE_DAEMON].map((id) => ({ id })), contenderIds, "contender").map((c) => c.id)
    : [...CONTENDERS];
  if (chosen.includes(BASELINE) && !flags["baseline-cli"]) throw new Error(`contender ${BASELINE} needs --baseline-cli PATH (another build's apps/cli/dist/lazypull.mjs)`);
  if (chosen.includes(BASELINE_DAEMON) && !flags["baseline-daemon"]) throw new Error(`contender ${BASELINE_DAEMON} needs --baseline-daemon PATH (another build's apps/daemon/dist/main.js)`);
  // a baseline build runs right after this checkout's contender it is compared with (which it needs)
  const after = (list: ContenderId[], mine: ContenderId, theirs: ContenderId) => (list.includes(theirs) ? list : list.flatMap((c) => (c === mine ? [c, theirs] : [c])));
  let contenders = chosen;
  if (flags["baseline-cli"]) contenders = after(contenders, "lazypull-landmark", BASELINE);
  if (flags["baseline-daemon"]) contenders = after(contenders, "lazypull-daemon", BASELINE_DAEMON);
  if (flags["baseline-cli"] && !contenders.includes(BASELINE)) throw new Error("--baseline-cli compares with lazypull-landmark: choose it too");
  if (flags["baseline-daemon"] && !contenders.includes(BASELINE_DAEMON)) throw new Error("--baseline-daemon compares with lazypull-daemon: choose it too");
  const suffix = (cs: ContenderId[]) => (contenderIds ? `-${cs.join("+")}` : "");
  const profileOf = (name: string) => {
    const p = PROFILES[name];
    if (!p) throw new Error(`unknown --profile ${name}; one of ${Object.keys(PROFILES).join(", ")}`);
    return p;
  };
  if (flags.profile) {
    return { runs: [{ profile: profileOf(flags.profile), workloads, contenders, extras: !flags["no-extras"], suffix: suffix(contenders) }], readme: false };
  }
  const runs: ProfileRun[] = [{ profile: profileOf(DEFAULT_PROFILE), workloads, contenders, extras: !flags["no-extras"], suffix: suffix(contenders) }];
  const slowWorkloads = workloads.filter((w) => SLOW_LINK_SUBSET.workloads.includes(w.id));
  const slowContenders = contenders.filter((c) => SLOW_LINK_SUBSET.contenders.includes(c));
  if (slowWorkloads.length && slowContenders.length) {
    runs.push({ profile: profileOf(SLOW_LINK_SUBSET.profile), workloads: slowWorkloads, contenders: slowContenders, extras: false, suffix: suffix(slowContenders) });
  }
  return { runs, readme: !workloadIds && !contenderIds && !flags["baseline-cli"] && !flags["baseline-daemon"] };
}
