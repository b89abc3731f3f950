/**
 * The host configuration: which podman, OCI runtime, ulimits, fuse-overlayfs and state root to use.
 * Read from `$LAZYPULL_CONFIG`, else `/etc/lazypull/config.json` when it exists, else defaults only.
 */
import { readFile } from "node:fs/promises";
import { z } from "zod";
import { CONFIG_PATH_ENV, DEFAULT_CONFIG_PATH, DEFAULTS, defaultStateRoot, type OverlayPreference } from "./defaults.js";
import { HostConfigError } from "./errors.js";
import { ULIMIT_ROWS, parseUlimit, type Ulimit } from "./ulimits.js";

export interface HostConfig {
  podman: {
    binary: string;
    runtime: string;
    globalArgs: string[];
    runArgs: string[];
    /** default `--network`; `null` = podman's own default */
    network: string | null;
    stopTimeoutMs: number;
  };
  /** wanted limits by podman ulimit name, before clamping to the host's */
  ulimits: Record<string, Ulimit>;
  /** which overlay stacks the layers: see `DEFAULTS.overlay` */
  overlay: OverlayPreference;
  kernelOverlay: { options: string[] };
  fuseOverlayfs: { binary: string; options: string[]; mountTimeoutMs: number };
  fusermount: string[];
  /** per-container state lives in `<stateRoot>/containers/<id>`, `mount` records in `<stateRoot>/mounts/<key>` */
  stateRoot: string;
  /** the file the config came from, `null` for defaults only */
  source: string | null;
}

const nonEmpty = z.string().min(1);
const ulimitSpec = z.string().refine((s) => parseUlimit(s) !== undefined, {
  message: 'expected "SOFT:HARD", "N" or "unlimited", with SOFT <= HARD',
});

/** What a config file may hold: every key optional, unknown keys rejected (typos must not pass silently). */
export const hostConfigFileSchema = z
  .object({
    podman: z
      .object({
        binary: nonEmpty,
        runtime: nonEmpty,
        globalArgs: z.array(z.string()),
        runArgs: z.array(z.string()),
        network: nonEmpty.nullable(),
        stopTimeoutMs: z.number().int().nonnegative(),
      })
      .partial()
      .strict(),
    ulimits: z.record(
      z.string().refine((n) => n in ULIMIT_ROWS, { message: `unknown ulimit (one of ${Object.keys(ULIMIT_ROWS).join(", ")})` }),
      ulimitSpec.nullable(),
    ),
    overlay: z.enum(["auto", "kernel", "fuse-overlayfs"]),
    kernelOverlay: z
      .object({ options: z.array(nonEmpty.refine((o) => !/[,]|^(?:lowerdir|upperdir|workdir)=/.test(o), { message: "one option without ',' (lowerdir/upperdir/workdir are lazypull's)" })) })
      .partial()
      .strict(),
    fuseOverlayfs: z
      .object({ binary: nonEmpty, options: z.array(nonEmpty), mountTimeoutMs: z.number().int().positive() })
      .partial()
      .strict(),
    fusermount: z.array(nonEmpty).min(1),
    stateRoot: nonEmpty.refine((p) => p.startsWith("/"), { message: "must be an absolute path" }),
  })
  .partial()
  .strict();

export type HostConfigFile = z.infer<typeof hostConfigFileSchema>;

/**
 * Defaults, then the file's values, then `overrides` (same shape as the file). A `null` ulimit
 * removes that default.
 */
export function resolveHostConfig(file: HostConfigFile = {}, opts: { env?: NodeJS.ProcessEnv; source?: string | null } = {}): HostConfig {
  const ulimitSpecs: Record<string, string | null> = { ...DEFAULTS.ulimits, ...file.ulimits };
  const ulimits: Record<string, Ulimit> = {};
  for (const [name, spec] of Object.entries(ulimitSpecs)) if (spec !== null) ulimits[name] = parseUlimit(spec)!;
  return {
    podman: {
      ...DEFAULTS.podman,
      globalArgs: [...DEFAULTS.podman.globalArgs],
      runArgs: [...DEFAULTS.podman.runArgs],
      ...file.podman,
    },
    ulimits,
    overlay: file.overlay ?? DEFAULTS.overlay,
    kernelOverlay: { options: [...(file.kernelOverlay?.options ?? DEFAULTS.kernelOverlay.options)] },
    fuseOverlayfs: { ...DEFAULTS.fuseOverlayfs, options: [...DEFAULTS.fuseOverlayfs.options], ...file.fuseOverlayfs },
    fusermount: [...(file.fusermount ?? DEFAULTS.fusermount)],
    stateRoot: file.stateRoot ?? defaultStateRoot(opts.env),
    source: opts.source ?? null,
  };
}

/** Validates parsed JSON; the error lists every offending key path. */
export function parseHostConfigFile(value: unknown, source = "<config>"): HostConfigFile {
  const res = hostConfigFileSchema.safeParse(value);
  if (res.success) return res.data;
  const problems = res.error.issues.map((i) => `${i.path.length ? i.path.join(".") : "(root)"}: ${i.message}`);
  throw new HostConfigError("LAUNCH_CONFIG_INVALID", `invalid lazypull config ${source}: ${problems.join("; ")}`, {
    path: source,
    problems,
  });
}

/**
 * Loads the host config. `path` (or `$LAZYPULL_CONFIG`) must exist; the default path is optional.
 * `overrides` apply last (tests, CLI flags).
 */
export async function loadHostConfig(
  opts: { path?: string; env?: NodeJS.ProcessEnv; overrides?: HostConfigFile } = {},
): Promise<HostConfig> {
  const env = opts.env ?? process.env;
  const explicit = opts.path ?? env[CONFIG_PATH_ENV];
  const path = explicit ?? DEFAULT_CONFIG_PATH;
  let text: string | undefined;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === "ENOENT";
    if (explicit !== undefined || !missing) {
      throw new HostConfigError("LAUNCH_CONFIG_UNREADABLE", `cannot read lazypull config ${path}: ${(err as Error).message}`, { path }, { cause: err });
    }
  }
  let file: HostConfigFile = {};
  if (text !== undefined) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new HostConfigError("LAUNCH_CONFIG_INVALID", `lazypull config ${path} is not valid JSON: ${(err as Error).message}`, { path }, { cause: err });
    }
    file = parseHostConfigFile(json, path);
  }
  const over = opts.overrides ? parseHostConfigFile(opts.overrides, "<overrides>") : {};
  const merged: HostConfigFile = {
    ...file,
    ...over,
    podman: { ...file.podman, ...over.podman },
    fuseOverlayfs: { ...file.fuseOverlayfs, ...over.fuseOverlayfs },
    kernelOverlay: { ...file.kernelOverlay, ...over.kernelOverlay },
    ulimits: { ...file.ulimits, ...over.ulimits },
  };
  return resolveHostConfig(merged, { env, source: text !== undefined ? path : null });
}
