import { readFileSync } from "node:fs";
import { mkdir, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";

/**
 * What a client remembers, across processes, about the registries that answered in plain HTTP: the
 * next process goes to them over HTTP straight away instead of failing a TLS handshake first (one round
 * trip per process: ~20 ms on the bench's link, 50 ms on its slow one). Only a host whose policy already
 * allows plain HTTP (an insecure registry, `--tls-verify=false`, loopback) ever uses it: a memo can save
 * a round trip, never lower a registry's security.
 */
export interface SchemeMemo {
  /** true when `host` answered in plain HTTP recently */
  plainHttp(host: string): boolean;
  /** what `host` answered on just now */
  remember(host: string, scheme: "http:" | "https:"): void;
}

/** How long a plain-HTTP answer is trusted to still hold: a registry that moves to TLS costs one failed request after it. */
const MEMO_TTL_MS = 7 * 24 * 3600 * 1000;
/** hosts kept at most, newest first (a memo is a few bytes per registry) */
const MAX_HOSTS = 256;

/**
 * A SchemeMemo kept in a small JSON file (`{host: ms since epoch}`), read once when first asked and
 * rewritten atomically (temp file + rename) when something changes; an unreadable or broken file is an
 * empty memo, and a failed write is only a round trip next time.
 */
export function fileSchemeMemo(path: string, now: () => number = Date.now): SchemeMemo {
  let hosts: Map<string, number> | undefined;
  const load = () => {
    if (hosts) return hosts;
    hosts = new Map();
    try {
      const parsed: unknown = JSON.parse(readFileSync(path, "utf8"));
      if (parsed && typeof parsed === "object") {
        for (const [h, at] of Object.entries(parsed)) if (typeof at === "number" && now() - at < MEMO_TTL_MS) hosts.set(h, at);
      }
    } catch {
      // missing or broken: nothing remembered
    }
    return hosts;
  };
  let writing = Promise.resolve();
  const save = () => {
    const body = JSON.stringify(Object.fromEntries([...load()].sort((a, b) => b[1] - a[1]).slice(0, MAX_HOSTS)));
    const tmp = `${path}.${process.pid}.tmp`;
    writing = writing
      .then(async () => {
        await mkdir(dirname(path), { recursive: true });
        await writeFile(tmp, body);
        await rename(tmp, path);
      })
      .catch(() => undefined);
  };
  return {
    plainHttp: (host) => load().has(host),
    remember(host, scheme) {
      const m = load();
      if (scheme === "https:") {
        if (m.delete(host)) save();
        return;
      }
      // written again only when it would otherwise expire within a day: not on every run
      const at = m.get(host);
      if (at !== undefined && now() - at < MEMO_TTL_MS - 24 * 3600 * 1000) return;
      m.set(host, now());
      save();
    },
  };
}
