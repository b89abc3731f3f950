import { execFile } from "node:child_process";
import { readFile, rm, writeFile, mkdir } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { promisify } from "node:util";
import type { Command } from "commander";
import { isRootless, xdgDir } from "@lazypull/host";
import { addLayerStore, defaultStoreDir, removeLayerStore, storeEntry, type StorageDefaults } from "@lazypull/layer-store";
import { CliError } from "../errors.js";

const run = promisify(execFile);
const out = (line: string) => process.stdout.write(`${line}\n`);

/**
 * The file podman 4.3 reads: `$CONTAINERS_STORAGE_CONF`, else the system one for root and
 * `$XDG_CONFIG_HOME/containers/storage.conf` (default `~/.config/…`) for a rootless user.
 */
function storageConfPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (flag) return resolve(flag);
  const named = env.CONTAINERS_STORAGE_CONF?.trim();
  if (named) return resolve(named);
  if (!isRootless(env)) return "/etc/containers/storage.conf";
  return join(xdgDir("XDG_CONFIG_HOME", env), "containers", "storage.conf");
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/** What podman uses with no storage.conf: a created file must state the same, or podman refuses it. */
async function podmanDefaults(): Promise<StorageDefaults> {
  let info: { store?: { graphDriverName?: unknown; graphRoot?: unknown; runRoot?: unknown } };
  try {
    info = JSON.parse((await run("podman", ["info", "--format", "json"], { maxBuffer: 16 * 2 ** 20 })).stdout) as typeof info;
  } catch (err) {
    throw new CliError("CLI_PODMAN_FAILED", `podman info failed, so the storage defaults to write are unknown: ${(err as Error).message}`, {}, { cause: err });
  }
  const s = info.store ?? {};
  if (typeof s.graphRoot !== "string" || typeof s.runRoot !== "string" || typeof s.graphDriverName !== "string") {
    throw new CliError("CLI_PODMAN_FAILED", "podman info did not report its store (graphRoot, runRoot, graphDriverName)", {});
  }
  if (s.graphDriverName !== "overlay") {
    // podman keeps the driver its store was made with: naming overlay in storage.conf is not enough, and a
    // layer store named next to vfs makes every podman command refuse to start
    const fix = isRootless()
      ? `; to switch: podman system reset (this deletes your images and containers), then put driver = "overlay" under [storage] in ${storageConfPath(undefined)}, then run this again`
      : "";
    throw new CliError("CLI_PODMAN_NOT_OVERLAY", `podman uses the ${s.graphDriverName} storage driver; an Additional Layer Store needs overlay${fix}`, { driver: s.graphDriverName });
  }
  return { driver: s.graphDriverName, graphRoot: s.graphRoot, runRoot: s.runRoot };
}

interface Opts {
  store: string;
  storageConf?: string;
  dryRun?: boolean;
  json?: boolean;
}

function report(opts: Opts, action: "setup" | "remove", file: string, changes: string[], extra: Record<string, unknown> = {}): void {
  if (opts.json) {
    out(JSON.stringify({ action, file, dryRun: !!opts.dryRun, changed: changes.length > 0, changes, ...extra }));
    return;
  }
  if (changes.length === 0) {
    out(action === "setup" ? `${file} already lists the store; nothing to do` : `${file} has no lazypull block; nothing to do`);
    return;
  }
  out(`${opts.dryRun ? "would change" : "changed"} ${file}:`);
  for (const c of changes) out(`  ${c}`);
}

/** `lazypull podman setup|remove`: point podman's storage.conf at lazypulld's Additional Layer Store, or stop. */
export function register(program: Command): void {
  const podman = program.command("podman").description("make plain `podman pull/run` lazy: use lazypulld's Additional Layer Store");
  const confFlag = ["--storage-conf <file>", "containers-storage.conf to edit (default: $CONTAINERS_STORAGE_CONF, else /etc/containers/storage.conf, or ~/.config/containers/storage.conf for a rootless user)"] as const;

  podman
    .command("setup")
    .description("add lazypulld's store to podman's storage.conf (start lazypulld before podman pulls)")
    .option("--store <dir>", "the store lazypulld serves (lazypulld --store; a rootless user's is ~/.local/share/lazypull/store)", defaultStoreDir())
    .option(...confFlag)
    .option("--dry-run", "print what would change and change nothing")
    .option("--json", "print JSON on stdout")
    .action(async (opts: Opts) => {
      const file = storageConfPath(opts.storageConf);
      const store = resolve(opts.store);
      const text = await readIfExists(file);
      const edit = addLayerStore(text, store, { file, ...(text === undefined ? { defaults: await podmanDefaults() } : {}) });
      if (!opts.dryRun) {
        // podman refuses to start at all when a configured store directory is missing; an empty one
        // (lazypulld not running) only means ordinary pulls
        await mkdir(store, { recursive: true });
        if (edit.changes.length > 0) {
          await mkdir(dirname(file), { recursive: true });
          await writeFile(file, edit.text);
        }
      }
      report(opts, "setup", file, edit.changes, { entry: storeEntry(store), created: text === undefined });
      if (!opts.json && edit.changes.length > 0 && !opts.dryRun) {
        out(`podman now looks layers up in ${store} first; run lazypulld (systemctl ${isRootless() ? "--user " : ""}enable --now lazypulld) so that it answers.`);
      }
    });

  podman
    .command("remove")
    .description("take lazypull's block out of podman's storage.conf (the file goes when setup created it)")
    .option(...confFlag)
    .option("--dry-run", "print what would change and change nothing")
    .option("--json", "print JSON on stdout")
    .action(async (opts: Omit<Opts, "store">) => {
      const file = storageConfPath(opts.storageConf);
      const text = await readIfExists(file);
      const edit = text === undefined ? { text: "", changes: [], empty: false } : removeLayerStore(text);
      if (!opts.dryRun && edit.changes.length > 0) {
        if (edit.empty) await rm(file);
        else await writeFile(file, edit.text);
      }
      report({ ...opts, store: "" }, "remove", file, edit.changes, { deleted: edit.empty && edit.changes.length > 0 });
    });
}
