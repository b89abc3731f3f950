// Loopback hosts, and matching a host against a list of insecure registries (the option and
// LAZYPULL_INSECURE_REGISTRIES); registries.conf's `insecure` entries are registries-conf.ts's isInsecureHost.
import { isIP } from "node:net";

/** True for hosts where plain HTTP is the default: localhost, 127.0.0.0/8 and ::1. */
export function isLoopbackRegistry(registry: string): boolean {
  let host = registry;
  if (host.startsWith("[")) host = host.slice(1, host.indexOf("]"));
  else if (host.includes(":")) host = host.slice(0, host.lastIndexOf(":"));
  if (host === "localhost" || host === "::1") return true;
  return isIP(host) === 4 && host.startsWith("127.");
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
