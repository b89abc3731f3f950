import type { ContenderId, Sample } from "./contenders.js";
import type { ConversionFigures, ReadFigures } from "./extras.js";
import { BASELINE, BASELINE_DAEMON } from "./plan.js";
import { REFERENCE, REFERENCE_LABEL, targetFor, targetLine, type Target } from "./reference.js";
import { median, min } from "./stats.js";

export interface BenchResult {
  date: string;
  profile: { name: string; rateMbit: number; rttMs: number };
  reps: number;
  /** whether the page cache was dropped before every sample (a host that has not run the image lately) */
  pageCache?: "dropped" | "kept";
  host: { cpus: number; load: number[]; kernel: string };
  workloads: { id: string; title: string; command: string[]; originalBytes: number; estargzBytes: number; recordedBytes?: number; convertOverLinkMs: number; recordedFiles?: number }[];
  samples: Sample[];
  conversion?: ConversionFigures;
  reads?: ReadFigures;
}

export const CONTENDER_LABEL: Record<ContenderId, string> = {
  "podman-pull-run": "podman pull + run",
  "lazypull-none": "lazypull, no prefetch",
  "lazypull-landmark": "lazypull, landmark prefetch",
  "lazypull-baseline": "… the same, with the baseline build (--baseline-cli)",
  "lazypull-recorded": "lazypull, recorded file list + landmark",
  "lazypull-rootless": "lazypull, landmark prefetch, rootless (ordinary user)",
  "lazypull-daemon": "lazypull run with lazypulld running (layers from the daemon)",
  "lazypull-daemon-baseline": "… the same, with the baseline build's lazypulld (--baseline-daemon)",
  "podman-lazypulld": "plain podman run via lazypulld (layer store)",
  "podman-lazypulld-nosilence": "… lazypulld, background fetch without quiet period",
  "podman-lazypulld-none": "… lazypulld, --prefetch none",
};
const ORDER = Object.keys(CONTENDER_LABEL) as ContenderId[];
/** contenders that only run as a before/after of another build: a full run never has them */
const BASELINES: ReadonlySet<ContenderId> = new Set([BASELINE, BASELINE_DAEMON]);

const sec = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const mb = (b: number) => `${(b / 1e6).toFixed(1)} MB`;
const pct = (x: number) => `${(100 * x).toFixed(1)} %`;

export interface Row {
  workload: string;
  contender: ContenderId;
  firstMin: number;
  firstMedian: number;
  bytesMedian: number;
  requestsMedian: number;
  fraction: number;
  totalBytesMedian: number;
  /** podman's median time to first output / this one's */
  speedup: number;
  breakdown: Record<string, number>;
  /** issue 15's goal for this lazypull row and whether its median meets it (none for the full pull) */
  target?: Target & { met: boolean };
}

export function summarise(r: BenchResult): Row[] {
  const rows: Row[] = [];
  for (const w of r.workloads) {
    const of = (c: ContenderId) => r.samples.filter((s) => s.workload === w.id && s.contender === c);
    const base = of("podman-pull-run");
    const baseMedian = base.length ? median(base.map((s) => s.firstOutputMs)) : NaN;
    for (const c of ORDER) {
      const ss = of(c);
      if (!ss.length) continue;
      const keys = [...new Set(ss.flatMap((s) => Object.keys(s.breakdown)))];
      const breakdown = Object.fromEntries(keys.map((k) => [k, median(ss.map((s) => (s.breakdown as Record<string, number>)[k] ?? 0))]));
      const firstMedian = median(ss.map((s) => s.firstOutputMs));
      const bytesMedian = median(ss.map((s) => s.bytesAtFirstOutput));
      const target = c === "podman-pull-run" ? undefined : targetFor(r.profile.name, w.id, baseMedian);
      rows.push({
        workload: w.id,
        contender: c,
        firstMin: min(ss.map((s) => s.firstOutputMs)),
        firstMedian,
        bytesMedian,
        requestsMedian: median(ss.map((s) => s.requestsAtFirstOutput)),
        fraction: bytesMedian / ss[0]!.imageBytes,
        totalBytesMedian: median(ss.map((s) => s.bytesTotal)),
        speedup: baseMedian / firstMedian,
        breakdown,
        ...(target ? { target: { ...target, met: firstMedian <= target.limitMs } } : {}),
      });
    }
  }
  return rows;
}

export function markdown(r: BenchResult, chartFile?: string): string {
  const rows = summarise(r);
  const out: string[] = [];
  out.push(`Profile **${r.profile.name}** (tbf ${r.profile.rateMbit} Mbit/s each way, ${r.profile.rttMs} ms RTT by the delaying proxy), ${r.reps} repetitions, cold cache each${r.pageCache === "dropped" ? " and the page cache dropped before each sample" : r.pageCache === "kept" ? " (page cache kept)" : ""}; ${r.date}, ${r.host.cpus} CPUs, load ${r.host.load.map((l) => l.toFixed(1)).join("/")}.`);
  const overlays = [...new Set(r.samples.flatMap((s) => (s.overlay ? [s.overlay] : [])))];
  if (overlays.length) out.push(`lazypull stacked the layers with: ${overlays.join(", ")}.`);
  out.push("");
  out.push("| workload | contender | first output min / median | vs full pull | target | bytes before first output (median) | of compressed image | requests | bytes by exit |");
  out.push("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const w of r.workloads) {
    const own = rows.filter((x) => x.workload === w.id);
    const lines = own.map(
      (row) =>
        `| ${w.title} | ${CONTENDER_LABEL[row.contender]} | ${sec(row.firstMin)} / ${sec(row.firstMedian)} | ${row.contender === "podman-pull-run" ? "1×" : Number.isFinite(row.speedup) ? `${(1 / row.speedup).toFixed(3)} (${row.speedup.toFixed(1)}× faster)` : "— (no full pull in this run)"} | ${targetCell(row.target)} | ${mb(row.bytesMedian)} | ${pct(row.fraction)} | ${row.requestsMedian} | ${mb(row.totalBytesMedian)} |`,
    );
    // the reference goes right under our full pull (first when none ran), where it is read against it
    const ref = REFERENCE[r.profile.name]?.[w.id];
    if (ref) lines.splice(own[0]?.contender === "podman-pull-run" ? 1 : 0, 0, referenceLine(w.title, ref.firstOutputMs, ref.fullPullMs));
    out.push(...lines);
  }
  out.push("");
  if (REFERENCE[r.profile.name]) {
    out.push("The reference rows are quoted from issue 15's own measurement (same images, commands and link, page cache dropped, a similar machine): a different run, so a rough comparison; their \"vs full pull\" is against the full pull of that measurement.");
    out.push("");
  }
  out.push(targetLine());
  out.push("");
  out.push("Compressed images: " + r.workloads.map((w) => `${w.title} ${mb(w.originalBytes)} gzip / ${mb(w.estargzBytes)} eStargz`).join("; ") + ".");
  out.push("");
  out.push("Where the lazy start goes (median ms; startup = spawn → first request: node + CLI load; resolve = manifest + config; TOC = footer/TOC reads; data = wall time with a data read in flight; rest = FUSE mount, overlay, podman, the command; FUSE ops = operations the layer mount answered during the run):");
  out.push("");
  out.push("| workload | contender | startup | resolve | TOC | data reads | mounts + podman + command | lazypull says ready at | FUSE ops |");
  out.push("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const row of rows.filter((x) => x.contender !== "podman-pull-run")) {
    const b = row.breakdown;
    const f = (k: string) => (b[k] === undefined ? "–" : `${Math.round(b[k])}`);
    out.push(`| ${row.workload} | ${CONTENDER_LABEL[row.contender]} | ${f("startup")} | ${f("resolve")} | ${f("toc")} | ${f("dataReads")} | ${f("mountAndPodman")} | ${f("lazypullReady")} | ${f("fuseOps")} |`);
  }
  const base = rows.filter((x) => x.contender === "podman-pull-run");
  if (base.length) {
    out.push("");
    out.push("Full pull split (median ms): " + base.map((x) => `${x.workload}: pull ${Math.round(x.breakdown.pull!)}, run to first output ${Math.round(x.breakdown.run!)}`).join("; ") + ".");
  }
  if (r.conversion || r.reads) out.push("");
  if (r.conversion) {
    out.push(`Conversion (local files, minbase layer, ${mb(r.conversion.tarBytes)} uncompressed): lazypull convert ${r.conversion.localMiBps.toFixed(1)} MiB/s vs gzip -9 ${r.conversion.gzip9MiBps.toFixed(1)} MiB/s. Registry → registry over the link: ` +
      r.workloads.map((w) => `${w.id} ${sec(w.convertOverLinkMs)}`).join(", ") + ".");
  }
  if (r.reads) {
    const x = r.reads;
    out.push(`Sequential read of ${x.path} (${mb(x.bytes)}): through lazypull cold over the link ${x.coldMiBps.toFixed(0)} MiB/s, warm (fresh mount over a filled cache) ${x.warmMiBps.toFixed(0)} MiB/s; local disk ${x.localCachedMiBps.toFixed(0)} MiB/s (page cache), ${x.localDirectMiBps.toFixed(0)} MiB/s (O_DIRECT).`);
  }
  if (chartFile) out.push("", `![time to first output](${chartFile})`);
  return out.join("\n") + "\n";
}

/** "✓ meets ≤ 1.07 s (0.65× reference)", "✗ misses …", or a dash where no goal applies. */
function targetCell(t: Row["target"]): string {
  if (!t) return "–";
  return `${t.met ? "✓ meets" : "✗ misses"} ≤ ${sec(t.limitMs)} (${t.basis})`;
}

function referenceLine(title: string, firstOutputMs: number, fullPullMs: number | undefined): string {
  const vs = fullPullMs ? `${(firstOutputMs / fullPullMs).toFixed(3)} of its own full pull (${sec(fullPullMs)})` : "— (no full pull figure)";
  return `| ${title} | ${REFERENCE_LABEL} | – / ${sec(firstOutputMs)} | ${vs} | – | – | – | – | – |`;
}

/**
 * The README's Benchmarks section: each profile of the invocation under its own heading, the
 * default profile first.
 */
export function readmeSection(parts: { result: BenchResult; chartFile: string }[]): string {
  return parts
    .map(({ result, chartFile }) => {
      const contenders = new Set(result.samples.map((s) => s.contender));
      const subset = contenders.size < ORDER.filter((c) => !BASELINES.has(c)).length ? "A subset of the workloads and contenders runs on this link; [bench/README.md](bench/README.md) says which and why.\n\n" : "";
      return `### ${result.profile.name}\n\n${subset}${markdown(result, chartFile)}`;
    })
    .join("\n");
}

const COLORS: Record<ContenderId, string> = {
  "podman-pull-run": "#9e9e9e",
  "lazypull-none": "#1f77b4",
  "lazypull-landmark": "#2ca02c",
  "lazypull-baseline": "#98df8a",
  "lazypull-recorded": "#ff7f0e",
  "lazypull-rootless": "#17becf",
  "lazypull-daemon": "#bcbd22",
  "lazypull-daemon-baseline": "#dbdb8d",
  "podman-lazypulld": "#9467bd",
  "podman-lazypulld-nosilence": "#c5b0d5",
  "podman-lazypulld-none": "#8c564b",
};

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");

/** A hand-written horizontal bar chart: median time to first output per workload and contender. */
export function svgChart(r: BenchResult): string {
  const rows = summarise(r);
  const refs = REFERENCE[r.profile.name] ?? {};
  const maxMs = Math.max(...rows.map((x) => x.firstMedian), ...r.workloads.map((w) => refs[w.id]?.firstOutputMs ?? 0));
  const left = 270;
  const width = 820;
  const barW = width - left - 90;
  const barH = 16;
  const lines: string[] = [];
  let y = 40;
  const bar = (label: string, ms: number, fill: string) => {
    const len = Math.max(1, (ms / maxMs) * barW);
    lines.push(`<text x="${left - 8}" y="${y + 12}" text-anchor="end">${esc(label)}</text>`);
    lines.push(`<rect x="${left}" y="${y}" width="${len.toFixed(1)}" height="${barH}" fill="${fill}"/>`);
    lines.push(`<text x="${(left + len + 6).toFixed(1)}" y="${y + 12}">${(ms / 1000).toFixed(2)} s</text>`);
    y += barH + 6;
  };
  for (const w of r.workloads) {
    lines.push(`<text x="10" y="${y + 12}" font-weight="bold">${esc(w.title)}</text>`);
    y += 20;
    for (const row of rows.filter((x) => x.workload === w.id)) bar(CONTENDER_LABEL[row.contender], row.firstMedian, COLORS[row.contender]);
    // quoted, not measured in this run: the label says so, and its pale red sets it apart from the contenders
    const ref = refs[w.id];
    if (ref) bar("Go reference (measured separately)", ref.firstOutputMs, "#e8a0a0");
    y += 10;
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y + 10}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">Time to first output, median of ${r.reps} (${esc(r.profile.name)})</text>`,
    ...lines,
    `</svg>`,
    "",
  ].join("\n");
}
