// Which registries are reached over plain HTTP: loopback, and registries.conf's `insecure` entries.
import { readFile } from "node:fs/promises";
import { isIP } from "node:net";
import { parseTomlFile } from "./registries-conf.js";

/** True for hosts where plain HTTP is the default: localhost, 127.0.0.0/8 and ::1. */
export function isLoopbackRegistry(registry: string): boolean {
  let host = registry;
  if (host.startsWith("[")) host = host.slice(1, host.indexOf("]"));
  else if (host.includes(":")) host = host.slice(0, host.lastIndexOf(":"));
  if (host === "localhost" || host === "::1") return true;
  return isIP(host) === 4 && host.startsWith("127.");
}

/**
 * LEGACY path, kept for endpoint.ts: the registries marked insecure in one containers-registries.conf(5)
 * file — v2 `[[registry]] insecure = true` (with `location` or `prefix`) and v1 `[registries.insecure]`.
 * It reads no drop-ins and, unlike podman, tolerates a file mixing v1 and v2; new code should use
 * `loadRegistriesConf` + `isInsecureHost` from registries-conf.ts. A missing file is no registry.
 */
export async function readInsecureRegistries(path: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch {
    return [];
  }
  const conf = parseTomlFile(text, path) as {
    registry?: { location?: string; prefix?: string; insecure?: boolean }[];
    registries?: { insecure?: { registries?: string[] } };
  };
  const out: string[] = [];
  for (const r of conf.registry ?? []) {
    if (r.insecure === true) {
      const loc = r.location ?? r.prefix;
      if (typeof loc === "string") out.push(loc);
    }
  }
  for (const r of conf.registries?.insecure?.registries ?? []) if (typeof r === "string") out.push(r);
  return out;
}

/** Whether `registry` (host[:port]) matches an insecure entry (exact, or a `*.domain` wildcard). */
export function matchesInsecure(registry: string, entries: readonly string[]): boolean {
  for (const raw of entries) {
    const e = raw.replace(/^https?:\/\//, "").replace(/\/.*$/, "");
    if (e === registry) return true;
    if (e.startsWith("*.") && registry.endsWith(e.slice(1))) return true;
  }
  return false;
}
