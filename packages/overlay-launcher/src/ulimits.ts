/**
 * Resource limits for the container: parsed from the config, clamped to what the host permits
 * (a container may not raise a hard limit above the launcher's own), rendered as `--ulimit` flags.
 */
import { readFile } from "node:fs/promises";

export interface Ulimit {
  soft: number;
  hard: number;
}

/** Ulimit names podman knows, and the row of `/proc/<pid>/limits` each one reads. */
export const ULIMIT_ROWS: Record<string, string> = {
  core: "Max core file size",
  cpu: "Max cpu time",
  data: "Max data size",
  fsize: "Max file size",
  locks: "Max file locks",
  memlock: "Max locked memory",
  msgqueue: "Max msgqueue size",
  nice: "Max nice priority",
  nofile: "Max open files",
  nproc: "Max processes",
  rss: "Max resident set",
  rtprio: "Max realtime priority",
  rttime: "Max realtime timeout",
  sigpending: "Max pending signals",
  stack: "Max stack size",
};

/** `Infinity` stands for `unlimited`. */
export type HostLimits = Record<string, Ulimit>;

/** Parses `/proc/<pid>/limits` text into limits keyed by podman's ulimit names. */
export function parseProcLimits(text: string): HostLimits {
  const out: HostLimits = {};
  const byRow = new Map(Object.entries(ULIMIT_ROWS).map(([name, row]) => [row, name]));
  for (const line of text.split("\n")) {
    const m = /^(.+?)\s{2,}(\S+)\s+(\S+)/.exec(line);
    if (!m) continue;
    const name = byRow.get(m[1]!.trim());
    if (!name) continue;
    const num = (s: string): number => (s === "unlimited" ? Infinity : Number(s));
    out[name] = { soft: num(m[2]!), hard: num(m[3]!) };
  }
  return out;
}

/** The limits this process runs under (what `ulimit -Hn` and friends would print). */
export async function readHostLimits(path = "/proc/self/limits"): Promise<HostLimits> {
  return parseProcLimits(await readFile(path, "utf8"));
}

/** `"4096:8192"` or `"4096"` (soft = hard) or `"unlimited"`; `undefined` when malformed. */
export function parseUlimit(spec: string): Ulimit | undefined {
  const parts = spec.split(":");
  if (parts.length > 2 || parts.some((p) => p === "")) return undefined;
  const nums = parts.map((p) => (p === "unlimited" || p === "-1" ? Infinity : /^\d+$/.test(p) ? Number(p) : NaN));
  if (nums.some((n) => Number.isNaN(n))) return undefined;
  const soft = nums[0]!;
  const hard = nums[1] ?? soft;
  return soft <= hard ? { soft, hard } : undefined;
}

export interface ClampedUlimit extends Ulimit {
  name: string;
  /** what was asked, when the host forced it lower */
  clampedFrom?: Ulimit;
}

/**
 * Lowers each wanted limit to the host's hard limit (soft never above hard). A limit the host
 * does not report is passed through unchanged.
 */
export function clampUlimits(wanted: Record<string, Ulimit>, host: HostLimits): ClampedUlimit[] {
  return Object.entries(wanted).map(([name, w]) => {
    const h = host[name];
    if (!h) return { name, ...w };
    const hard = Math.min(w.hard, h.hard);
    const soft = Math.min(w.soft, hard);
    return hard === w.hard && soft === w.soft ? { name, soft, hard } : { name, soft, hard, clampedFrom: { ...w } };
  });
}

/** `--ulimit name=soft:hard` pairs, in the order given. */
export function ulimitArgs(limits: ClampedUlimit[]): string[] {
  const fmt = (n: number): string => (n === Infinity ? "-1" : String(n));
  return limits.flatMap((l) => ["--ulimit", `${l.name}=${fmt(l.soft)}:${fmt(l.hard)}`]);
}
