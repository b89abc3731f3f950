import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { isAbsolute, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { Ajv } from "ajv";
import { defaultCacheDir, parseSize } from "@lazypull/blob-cache";
import { DEFAULT_SOCKET_PATH, rootlessSocketPath } from "@lazypull/daemon-client";
import type { PrefetchPolicy } from "@lazypull/fuse-fs";
import { isRootless, xdgDir } from "@lazypull/host";
import { DEFAULT_STORE_DIR, defaultStoreDir } from "@lazypull/layer-store";
import { DaemonError } from "./errors.js";

/** Everything lazypulld runs with, after the file and the flags are merged. */
export interface DaemonConfig {
  /** the API socket; its directory is made root-only (0700) */
  socket: string;
  /** state directory: the FUSE mount lives at `<root>/layers` */
  root: string;
  cacheDir: string;
  /** on-disk cap of the chunk cache in bytes */
  cacheMaxBytes?: number;
  /**
   * inflated chunks kept in memory, in bytes (the mount's LRU; the disk cache keeps no second copy).
   * The kernel page cache holds what was served, so this only needs the chunks being read piecewise.
   */
  cacheMemoryBytes: number;
  /** what to fetch before it is read: nothing, the landmark range, or landmark then the whole layer in the background */
  prefetch: PrefetchPolicy;
  /** registries whose certificates are not verified and that may answer in plain HTTP, as registries.conf's `insecure = true` */
  insecureRegistries: string[];
  /** containers-registries.conf (mirrors, rewrites, blocked and insecure registries; its drop-ins too); false: none */
  registriesConf?: string | false;
  /** serve layers without a TOC digest annotation (unverifiable TOC) */
  allowUnverified: boolean;
  /** FUSE op timeout (slow networks) */
  opTimeoutMs: number;
  /** background fetching waits this long after the last on-demand read (fuse-fs default when unset) */
  backgroundSilenceMs?: number;
  /** podman's Additional Layer Store: where it is mounted, or false for none */
  store: string | false;
  /** a store layer podman does not use is let go after this long without lookups */
  storeIdleMs: number;
  /** how often leases of dead client processes are swept */
  leaseCheckIntervalMs: number;
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
}

export const DEFAULT_ROOT = "/var/lib/lazypull/daemon";
export const DEFAULT_STORE = DEFAULT_STORE_DIR;
/** enough for a few large chunks read piecewise at once; a small part of the 150 MB the daemon aims for */
export const DEFAULT_MEMORY_BYTES = 32 * 2 ** 20;
export const DEFAULT_CONFIG_FILE = "/etc/lazypull/lazypulld.json";

/** Where a daemon puts things unless told otherwise; each flag or config key replaces one of them. */
export interface Defaults {
  /** undefined: a rootless daemon without `$XDG_RUNTIME_DIR` has nowhere private to put it */
  socket: string | undefined;
  root: string;
  store: string;
  cacheDir: string;
  /** read when it exists */
  configFile: string;
}


/**
 * Root's system paths, or the acting user's (`@lazypull/host`'s hostUid: also inside `podman unshare`,
 * where the daemon is uid 0 of the namespace): the socket where the user's CLI looks
 * (`@lazypull/daemon-client`'s daemonSocketPath), state and store in `$XDG_DATA_HOME/lazypull` — the
 * store-use counts must outlive a reboot, as podman's layers do — the cache in `$XDG_CACHE_HOME`, the
 * config in `$XDG_CONFIG_HOME`. (The user's own registries.conf, when there is one, is registry-client's
 * default, as it is podman's.)
 */
export function defaultsFor(env: NodeJS.ProcessEnv = process.env, uid: number = process.getuid?.() ?? 0): Defaults {
  const envSocket = env.LAZYPULL_SOCKET?.trim() || undefined;
  const cacheDir = env.LAZYPULL_CACHE_DIR?.trim() || defaultCacheDir(env, uid);
  if (!isRootless(env, uid)) {
    return { socket: envSocket ?? DEFAULT_SOCKET_PATH, root: DEFAULT_ROOT, store: DEFAULT_STORE, cacheDir, configFile: DEFAULT_CONFIG_FILE };
  }
  const data = join(xdgDir("XDG_DATA_HOME", env), "lazypull");
  const config = xdgDir("XDG_CONFIG_HOME", env);
  return {
    socket: envSocket ?? rootlessSocketPath(env),
    root: join(data, "daemon"),
    store: defaultStoreDir(env, uid),
    cacheDir,
    configFile: join(config, "lazypull", "lazypulld.json"),
  };
}

/** The JSON config file: every key optional, sizes as numbers or strings like "10GiB". */
const fileSchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    socket: { type: "string", minLength: 1 },
    root: { type: "string", minLength: 1 },
    cacheDir: { type: "string", minLength: 1 },
    cacheMaxSize: { type: ["string", "integer"] },
    cacheMemorySize: { type: ["string", "integer"] },
    prefetch: { enum: ["none", "landmark", "all"] },
    insecureRegistries: { type: "array", items: { type: "string", minLength: 1 } },
    registriesConf: { anyOf: [{ type: "string", minLength: 1 }, { const: false }] },
    allowUnverified: { type: "boolean" },
    opTimeoutMs: { type: "integer", minimum: 1000 },
    backgroundSilenceMs: { type: "integer", minimum: 0 },
    leaseCheckIntervalMs: { type: "integer", minimum: 100 },
    store: { anyOf: [{ type: "string", minLength: 1 }, { const: false }] },
    storeIdleMs: { type: "integer", minimum: 0 },
    logLevel: { enum: ["fatal", "error", "warn", "info", "debug", "trace", "silent"] },
  },
} as const;

export interface ConfigFile {
  socket?: string;
  root?: string;
  cacheDir?: string;
  cacheMaxSize?: string | number;
  cacheMemorySize?: string | number;
  prefetch?: PrefetchPolicy;
  insecureRegistries?: string[];
  registriesConf?: string | false;
  allowUnverified?: boolean;
  opTimeoutMs?: number;
  backgroundSilenceMs?: number;
  leaseCheckIntervalMs?: number;
  store?: string | false;
  storeIdleMs?: number;
  logLevel?: DaemonConfig["logLevel"];
}

const ajv = new Ajv({ allErrors: true, allowUnionTypes: true });
const validateFile = ajv.compile<ConfigFile>(fileSchema);

export function parseConfigFile(text: string, path: string): ConfigFile {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new DaemonError("DAEMON_BAD_CONFIG", `config ${path} is not valid JSON: ${(err as Error).message}`, { path });
  }
  if (!validateFile(value)) {
    throw new DaemonError("DAEMON_BAD_CONFIG", `config ${path}: ${ajv.errorsText(validateFile.errors, { dataVar: "config" })}`, { path });
  }
  return value;
}

export const USAGE = `Usage: lazypulld [options]

Run by an ordinary user, lazypulld runs itself inside rootless podman's namespaces (podman unshare)
and its defaults are the user's: the socket in $XDG_RUNTIME_DIR/lazypull, state and store in
~/.local/share/lazypull, the cache in ~/.cache/lazypull, the config ~/.config/lazypull/lazypulld.json.

  --socket PATH             API socket (default ${DEFAULT_SOCKET_PATH}, or $LAZYPULL_SOCKET)
  --root DIR                state directory; the FUSE mount is DIR/layers (default ${DEFAULT_ROOT})
  --config FILE             JSON config file (default ${DEFAULT_CONFIG_FILE} when it exists)
  --cache-dir DIR           chunk cache directory (default: $LAZYPULL_CACHE_DIR or the host default)
  --cache-max-size SIZE     chunk cache cap, e.g. 20GiB
  --cache-memory-size SIZE  inflated chunks kept in memory (default 32MiB; 0 disables it)
  --store DIR               serve podman's Additional Layer Store there (default ${DEFAULT_STORE})
  --no-store                serve no layer store (only lazypull run/mount use the daemon)
  --prefetch POLICY         none | landmark | all (landmark, then the whole layer in the background; default)
  --insecure-registry HOST  plain-HTTP registry (repeatable)
  --allow-unverified        serve layers whose TOC digest is not in the manifest
  --log-level LEVEL         fatal|error|warn|info|debug|trace|silent (default info)
  -V, --version             print lazypulld's version
  -h, --help
`;

function size(v: string | number | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v === "number") return v;
  try {
    return parseSize(v);
  } catch (err) {
    throw new DaemonError("DAEMON_BAD_CONFIG", `${what}: ${(err as Error).message}`, { [what]: v });
  }
}

/**
 * Builds the config from argv (flags win), the config file and defaults (root's, or the user's for a
 * rootless `uid`: see defaultsFor). `--help` and `--version` return what to print instead.
 */
export async function loadConfig(argv: string[], env: NodeJS.ProcessEnv = process.env, uid: number = process.getuid?.() ?? 0): Promise<DaemonConfig | "help" | "version"> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        socket: { type: "string" },
        root: { type: "string" },
        config: { type: "string" },
        "cache-dir": { type: "string" },
        "cache-max-size": { type: "string" },
        "cache-memory-size": { type: "string" },
        prefetch: { type: "string" },
        store: { type: "string" },
        "no-store": { type: "boolean" },
        "insecure-registry": { type: "string", multiple: true },
        "allow-unverified": { type: "boolean" },
        "log-level": { type: "string" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean", short: "V" },
      },
    }));
  } catch (err) {
    throw new DaemonError("DAEMON_BAD_CONFIG", `${(err as Error).message}\n\n${USAGE}`, {});
  }
  if (values.help) return "help";
  if (values.version) return "version";

  const defaults = defaultsFor(env, uid);
  const configPath = values.config ?? env.LAZYPULL_DAEMON_CONFIG ?? (existsSync(defaults.configFile) ? defaults.configFile : undefined);
  let file: ConfigFile = {};
  if (configPath) {
    let text: string;
    try {
      text = await readFile(configPath, "utf8");
    } catch (err) {
      throw new DaemonError("DAEMON_BAD_CONFIG", `cannot read config ${configPath}: ${(err as Error).message}`, { path: configPath });
    }
    file = parseConfigFile(text, configPath);
  }
  // Flags are checked by the same schema as the file, so both give the same messages.
  const fromFlags = parseConfigFile(
    JSON.stringify({
      socket: values.socket,
      root: values.root,
      cacheDir: values["cache-dir"],
      cacheMaxSize: values["cache-max-size"],
      cacheMemorySize: values["cache-memory-size"],
      prefetch: values.prefetch,
      store: values["no-store"] ? false : values.store,
      insecureRegistries: values["insecure-registry"],
      allowUnverified: values["allow-unverified"],
      logLevel: values["log-level"],
    }),
    "flags",
  );
  const merged: ConfigFile = { ...file, ...Object.fromEntries(Object.entries(fromFlags).filter(([, v]) => v !== undefined)) };
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(p));
  const socket = merged.socket ?? defaults.socket;
  if (socket === undefined) {
    throw new DaemonError(
      "DAEMON_BAD_CONFIG",
      "XDG_RUNTIME_DIR is not set, and a rootless lazypulld puts its socket there (where the user's lazypull looks for it); log in through a session that sets it (systemd --user does), or pass --socket",
      { env: "XDG_RUNTIME_DIR" },
    );
  }
  const cfg: DaemonConfig = {
    socket: abs(socket),
    root: abs(merged.root ?? defaults.root),
    cacheDir: abs(merged.cacheDir ?? defaults.cacheDir),
    prefetch: merged.prefetch ?? "all",
    insecureRegistries: [...new Set([...(file.insecureRegistries ?? []), ...(fromFlags.insecureRegistries ?? [])])],
    allowUnverified: merged.allowUnverified ?? false,
    opTimeoutMs: merged.opTimeoutMs ?? 120_000,
    leaseCheckIntervalMs: merged.leaseCheckIntervalMs ?? 2000,
    store: merged.store === false ? false : abs(merged.store ?? defaults.store),
    storeIdleMs: merged.storeIdleMs ?? 5 * 60_000,
    logLevel: merged.logLevel ?? "info",
    cacheMemoryBytes: size(merged.cacheMemorySize, "cacheMemorySize") ?? DEFAULT_MEMORY_BYTES,
  };
  const maxBytes = size(merged.cacheMaxSize, "cacheMaxSize");
  if (maxBytes !== undefined) cfg.cacheMaxBytes = maxBytes;
  const registriesConf = merged.registriesConf;
  if (registriesConf !== undefined) cfg.registriesConf = registriesConf;
  if (merged.backgroundSilenceMs !== undefined) cfg.backgroundSilenceMs = merged.backgroundSilenceMs;
  return cfg;
}
