import { resolve } from "node:path";
import type { Command } from "commander";
import { defaultCacheDir, openBlobCache, parseSize, type BlobCache } from "@lazypull/blob-cache";
import { formatBytes } from "../ui/progress.js";

interface DirOpts {
  cacheDir?: string;
  json?: boolean;
}

async function withCache<T>(opts: DirOpts, fn: (cache: BlobCache) => Promise<T>, maxBytes?: number): Promise<T> {
  const dir = resolve(opts.cacheDir ?? defaultCacheDir());
  // No memory tier: the CLI reads each entry at most once.
  const cache = await openBlobCache({ dir, memoryBytes: 0, ...(maxBytes === undefined ? {} : { maxBytes }) });
  try {
    return await fn(cache);
  } finally {
    await cache.close();
  }
}

const shortDigest = (d: string) => d.replace(/^([^:]+):(.{12}).*$/, "$1:$2");
const out = (line: string) => process.stdout.write(`${line}\n`);

/** `lazypull cache stats|ls|prune`: the host's chunk cache, shared with the daemon. */
export function register(program: Command): void {
  const cache = program.command("cache").description("inspect and trim the local chunk cache (shared with lazypulld)");
  const dirFlag = ["--cache-dir <dir>", "cache directory (default: $LAZYPULL_CACHE_DIR, else the host default)"] as const;

  cache
    .command("stats")
    .description("entries, usage against the cap, pinned layers")
    .option(...dirFlag)
    .option("--json", "print JSON on stdout")
    .action(async (opts: DirOpts) => {
      const u = await withCache(opts, (c) => c.usage());
      if (opts.json) {
        out(JSON.stringify(u));
        return;
      }
      const pct = u.maxBytes > 0 ? ` (${((100 * u.bytes) / u.maxBytes).toFixed(1)}%)` : "";
      out(`cache dir  ${u.dir}`);
      out(`entries    ${u.entries} from ${u.blobs} blob${u.blobs === 1 ? "" : "s"}`);
      out(`usage      ${formatBytes(u.bytes)} of ${formatBytes(u.maxBytes)}${pct}`);
      out(`pinned     ${u.pinnedBlobs.length === 0 ? "none" : u.pinnedBlobs.map(shortDigest).join(", ")}`);
    });

  cache
    .command("ls")
    .description("every entry, most recently used first")
    .option(...dirFlag)
    .option("--json", "print JSON on stdout")
    .action(async (opts: DirOpts) => {
      const entries = await withCache(opts, (c) => c.list());
      if (opts.json) {
        out(JSON.stringify(entries));
        return;
      }
      out(["BLOB", "ID", "SIZE", "LAST USE", "PINNED"].join("\t"));
      for (const e of entries) {
        out([shortDigest(e.blob), e.id, formatBytes(e.size), e.lastUse.toISOString(), e.pinned ? "yes" : ""].join("\t"));
      }
    });

  cache
    .command("prune")
    .description("evict least recently used, unpinned entries down to a size (default: the cache cap)")
    .option(...dirFlag)
    .option("--max-size <size>", "target size, e.g. 500MB or 10GiB")
    .option("--json", "print JSON on stdout")
    .action(async (opts: DirOpts & { maxSize?: string }) => {
      const target = opts.maxSize === undefined ? undefined : parseSize(opts.maxSize);
      const { res, after } = await withCache(opts, async (c) => {
        const res = await c.evictTo(target ?? c.maxBytes);
        return { res, after: await c.usage() };
      });
      if (opts.json) {
        out(JSON.stringify({ ...res, entries: after.entries, bytes: after.bytes }));
        return;
      }
      if (res.busy) out("another process is evicting right now; try again");
      out(`evicted ${res.evicted} entr${res.evicted === 1 ? "y" : "ies"} (${formatBytes(res.freedBytes)}); now ${after.entries} entries, ${formatBytes(after.bytes)}`);
    });
}
