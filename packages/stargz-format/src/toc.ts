import { createHash } from "node:crypto";
import type { Toc, TocEntry } from "./types.js";

export const TOC_TAR_NAME = "stargz.index.json";
export const PREFETCH_LANDMARK = ".prefetch.landmark";
export const NO_PREFETCH_LANDMARK = ".no.prefetch.landmark";
export const LANDMARK_CONTENTS = 0x0f;

/** A NUL, or an empty, `.` or `..` component (leading, trailing and doubled `/` make empty ones). */
const NEEDS_WORK = /\0|\/\/|^\/|\/$|(?:^|\/)\.\.?(?:\/|$)/;

/**
 * `./usr/bin/` → `usr/bin`; `/` or `./` → "" (root). Returns undefined for names that escape
 * (a `..` component) or contain NUL.
 */
export function normalizeName(raw: string): string | undefined {
  // most names (all our writer's, most of containerd's) are already normal: no split, no new string
  if (!NEEDS_WORK.test(raw)) return raw;
  if (raw.includes("\0")) return undefined;
  const parts: string[] = [];
  for (const p of raw.split("/")) {
    if (p === "" || p === ".") continue;
    if (p === "..") return undefined;
    parts.push(p);
  }
  return parts.join("/");
}

/**
 * `normalizeName` for queries (lookup, readdir, chunksFor): callers often pass "/usr/bin" or
 * "./usr/bin/", so only the ends are trimmed when that is all the name needs. The result may be a slice
 * that keeps the argument alive: fine for a lookup, not for storing (use `normalizeName`).
 */
export function normalizeQuery(raw: string): string | undefined {
  if (!NEEDS_WORK.test(raw)) return raw;
  let s = raw;
  while (s.startsWith("/") || s.startsWith("./")) s = s.slice(s.startsWith("/") ? 1 : 2);
  while (s.endsWith("/")) s = s.slice(0, -1);
  return NEEDS_WORK.test(s) ? normalizeName(raw) : s;
}

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

const KEY_ORDER: Array<keyof TocEntry> = [
  "name",
  "type",
  "size",
  "modtime",
  "linkName",
  "mode",
  "uid",
  "gid",
  "userName",
  "groupName",
  "offset",
  "chunkOffset",
  "chunkSize",
  "chunkDigest",
  "innerOffset",
  "devMajor",
  "devMinor",
  "xattrs",
  "digest",
];

/** The TOC JSON as the writer emits it: fixed key order, tab indentation (as containerd's writer). */
export function serializeToc(toc: Toc): Buffer {
  const entries = toc.entries.map((e) => {
    const o: Record<string, unknown> = {};
    for (const k of KEY_ORDER) if (e[k] !== undefined) o[k] = e[k];
    return o;
  });
  return Buffer.from(JSON.stringify({ version: toc.version, entries }, null, "\t"), "utf8");
}

/** RFC 3339 as Go prints it: no fraction for whole seconds. */
export function formatModtime(sec: number): string | undefined {
  const ms = Math.round(sec * 1000);
  const d = new Date(ms);
  if (Number.isNaN(d.getTime()) || d.getUTCFullYear() < 1 || d.getUTCFullYear() > 9999) return undefined;
  const iso = d.toISOString();
  return ms % 1000 === 0 ? iso.replace(/\.000Z$/, "Z") : iso;
}

/** RFC 3339 with any fraction and offset → ms since epoch (0 when absent or unparsable). */
export function parseModtime(s: string | undefined): number {
  if (!s) return 0;
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$/.exec(s);
  if (!m) return 0;
  const base = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(base)) return 0;
  const frac = m[2] ? Number(`0${m[2]}`) * 1000 : 0;
  return base + frac;
}
