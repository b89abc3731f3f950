import { WORKLOADS } from "./workloads.js";

/**
 * The Go reference of issue 15: containerd's stargz-store serving podman's Additional Layer Store,
 * on kernel overlayfs. It is not built or shipped by lazypull (and cannot be installed on the bench
 * host), so its figures are quoted from issue 15's own measurement — same images and commands, same
 * link profiles, page cache dropped before each run, on a similar machine — never re-measured here.
 * A different run: beside ours for orientation, not a same-run comparison.
 */
export const REFERENCE_LABEL = "Go reference: stargz-store via podman's layer store, kernel overlayfs — measured separately (not built or shipped by lazypull)";

export interface ReferenceFigure {
  /** median time to the command's first output */
  firstOutputMs: number;
  /** full pull + run to first output in that same measurement, where it was taken */
  fullPullMs?: number;
}

/** profile name → workload id → figure */
export const REFERENCE: Record<string, Record<string, ReferenceFigure>> = {
  "100mbit/20ms-rtt": {
    minbase: { firstOutputMs: 1650, fullPullMs: 7820 },
    python: { firstOutputMs: 2180, fullPullMs: 9260 },
  },
  "20mbit/50ms-rtt": {
    minbase: { firstOutputMs: 2770 },
    python: { firstOutputMs: 5450 },
  },
};

/**
 * Issue 15's goal for lazypull's time to first output: at most 0.65× the reference's on the
 * 100mbit/20ms-rtt link, and at most 0.06× the full pull on the 20mbit/50ms-rtt link (the full pull
 * of the same run: the reference has no 20 Mbit full-pull figure).
 */
export const TARGET = {
  ofReference: { profile: "100mbit/20ms-rtt", factor: 0.65 },
  ofFullPull: { profile: "20mbit/50ms-rtt", factor: 0.06 },
} as const;

export interface Target {
  limitMs: number;
  /** what the limit is made of, e.g. "0.65× reference" */
  basis: string;
}

/**
 * The first-output limit a lazypull contender must meet for this profile and workload, or none
 * (no reference figure, no full pull in the run, or a profile without a goal).
 * `fullPullMedianMs`: this run's median full pull + run to first output (NaN when none ran).
 */
export function targetFor(profile: string, workload: string, fullPullMedianMs: number): Target | undefined {
  if (profile === TARGET.ofReference.profile) {
    const ref = REFERENCE[profile]?.[workload];
    if (!ref) return undefined;
    return { limitMs: TARGET.ofReference.factor * ref.firstOutputMs, basis: `${TARGET.ofReference.factor}× reference` };
  }
  if (profile === TARGET.ofFullPull.profile && Number.isFinite(fullPullMedianMs)) {
    return { limitMs: TARGET.ofFullPull.factor * fullPullMedianMs, basis: `${TARGET.ofFullPull.factor}× full pull` };
  }
  return undefined;
}

const sec = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/** The goal in one sentence, its limits worked out from the reference figures. */
export function targetLine(): string {
  const refProfile = TARGET.ofReference.profile;
  const limits = Object.entries(REFERENCE[refProfile] ?? {}).map(([id, f]) => {
    const title = WORKLOADS.find((w) => w.id === id)?.title ?? id;
    return `≤ ${sec(TARGET.ofReference.factor * f.firstOutputMs)} ${title}`;
  });
  return (
    `Target (issue 15): lazypull's first output ≤ ${TARGET.ofReference.factor}× the reference's at ${refProfile} (${limits.join(", ")}) ` +
    `and ≤ ${TARGET.ofFullPull.factor}× the full pull at ${TARGET.ofFullPull.profile}; the "target" column checks each lazypull row's median against it.`
  );
}
