import type { Command } from "commander";
import { DaemonClient, daemonSocketPath, type CacheStatus, type Health, type ImageLease, type LayerStatus } from "@lazypull/daemon-client";
import { formatBytes, formatDuration } from "../ui/progress.js";

export interface StatusSnapshot {
  socket: string;
  health: Health;
  images: ImageLease[];
  layers: LayerStatus[];
  cache: CacheStatus;
}

async function snapshot(client: DaemonClient): Promise<StatusSnapshot> {
  const [health, images, layers, cache] = await Promise.all([client.health(), client.images(), client.layers(), client.cache()]);
  return { socket: client.socketPath, health, images, layers, cache };
}

const shortDigest = (d: string) => d.replace(/^([^:]+):(.{12}).*$/, "$1:$2");

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd());
}

function bar(done: number, total: number, width = 16): string {
  const frac = total > 0 ? Math.min(1, done / total) : 0;
  const filled = Math.round(frac * width);
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}%`;
}

/** The human view of the daemon: its images, each layer's fetch progress, the cache. */
export function renderStatus(s: StatusSnapshot): string {
  const h = s.health;
  const store = h.layerStore ? `  podman layer store ${h.layerStore}` : "";
  const lines = [`lazypulld ${h.version}  pid ${h.pid}  up ${formatDuration(h.uptimeSeconds * 1000)}  socket ${s.socket}  mount ${h.fuseMountpoint}${store}`, ""];
  lines.push(`IMAGES (${s.images.length})`);
  if (s.images.length) {
    lines.push(
      ...table([
        ["ID", "REFERENCE", "MANIFEST", "LAYERS", "OWNER PID", "SINCE"],
        ...s.images.map((i) => [i.id.slice(0, 8), i.reference, shortDigest(i.manifestDigest), String(i.layers.length), i.pid === undefined ? "-" : String(i.pid), i.createdAt]),
      ]),
    );
  }
  lines.push("", `LAYERS (${s.layers.length})`);
  if (s.layers.length) {
    lines.push(
      ...table([
        // IMAGES: lazypull run/mount leases; PODMAN: podman layers using it through the layer store
        ["DIGEST", "KIND", "STATE", "FETCHED", "PROGRESS", "REQUESTS", "ERRORS", "IMAGES", "PODMAN"],
        ...s.layers.map((l) => [
          shortDigest(l.digest),
          l.kind,
          l.state,
          `${formatBytes(l.bytesFetched)} / ${formatBytes(l.bytesTotal)}`,
          bar(l.bytesFetched, l.bytesTotal),
          String(l.requests),
          l.errors ? `${l.errors} (${l.lastError ?? "?"})` : "0",
          String(l.images.length),
          l.store ? String(l.store.uses) : "-",
        ]),
      ]),
    );
  }
  const c = s.cache;
  const pct = c.maxBytes > 0 ? ` (${((100 * c.bytes) / c.maxBytes).toFixed(1)}%)` : "";
  lines.push("", `CACHE  ${formatBytes(c.bytes)} of ${formatBytes(c.maxBytes)}${pct}, ${c.entries} entries from ${c.blobs} blobs, ${c.dir}`);
  return `${lines.join("\n")}\n`;
}

interface StatusOpts {
  json?: boolean;
  watch?: boolean;
  socket?: string;
  interval: string;
}

/** `lazypull status`: what lazypulld is serving; `--watch` redraws it in place on a TTY. */
export function register(program: Command): void {
  program
    .command("status")
    .description("show lazypulld's mounted images, layers and fetch progress")
    .option("--json", "print JSON on stdout (one object per refresh with --watch)")
    .option("-w, --watch", "refresh until interrupted (redrawn in place on a TTY)")
    .option("--interval <ms>", "refresh interval for --watch", "1000")
    .option("--socket <path>", "daemon socket (default: $LAZYPULL_SOCKET or /run/lazypull/lazypulld.sock)")
    .action(async (opts: StatusOpts) => {
      const client = new DaemonClient({ socketPath: opts.socket ?? daemonSocketPath(), timeoutMs: 30_000 });
      const tty = Boolean(process.stdout.isTTY) && !opts.json;
      const show = async () => {
        const s = await snapshot(client);
        if (opts.json) process.stdout.write(`${JSON.stringify(s)}\n`);
        else process.stdout.write(`${opts.watch && tty ? "\x1b[H\x1b[2J" : ""}${renderStatus(s)}`);
      };
      try {
        await show();
        if (!opts.watch) return;
        const interval = Math.max(100, Number(opts.interval) || 1000);
        await new Promise<void>((resolve, reject) => {
          const timer = setInterval(() => void show().catch((err: unknown) => (clearInterval(timer), reject(err as Error))), interval);
          process.once("SIGINT", () => {
            clearInterval(timer);
            resolve();
          });
        });
      } finally {
        await client.close();
      }
    });
}
