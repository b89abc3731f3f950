// Loopback hosts, and matching a host against a list of insecure registries (the option and
// LAZYPULL_INSECURE_REGISTRIES); registries.conf's `insecure` entries are registries-conf.ts's isInsecureHost.
import { isIP } from "node:net";

/** `host[:port]` → host (an IPv6 address without its brackets) */
function hostOf(registry: string): string {
  if (registry.startsWith("[")) return registry.slice(1, registry.indexOf("]"));
  return registry.includes(":") ? registry.slice(0, registry.lastIndexOf(":")) : registry;
}

/** True for hosts where plain HTTP is the default: localhost, 127.0.0.0/8 and ::1. */
export function isLoopbackRegistry(registry: string): boolean {
  const host = hostOf(registry);
  if (host === "localhost" || host === "::1") return true;
  return isIP(host) === 4 && host.startsWith("127.");
}

/** Whether `registry` (host[:port]) matches an insecure entry (exact, or a `*.domain` wildcard, which matches the host on any port, as registries.conf's). */
export function matchesInsecure(registry: string, entries: readonly string[]): boolean {
  for (const raw of entries) {
    const e = raw.replace(/^https?:\/\//, "").replace(/\/.*$/, "");
    if (e === registry) return true;
    if (e.startsWith("*.") && (registry.endsWith(e.slice(1)) || hostOf(registry).endsWith(e.slice(1)))) return true;
  }
  return false;
}
