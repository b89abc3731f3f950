/**
 * Image config + `lazypull run` options → the argv of `podman … run --rootfs MERGED CMD…`.
 * Pure: no I/O, every input explicit, so the whole argv is unit-tested.
 *
 * With `--rootfs` podman has no image config, so the launcher applies it: the container's argv is
 * computed here (Entrypoint + Cmd, docker's rules) and passed after the rootfs path. The rootfs
 * path takes no `:O` suffix: the overlay is already ours (fuse-overlayfs), podman must not add one.
 */
import type { ImageConfig } from "@lazypull/registry-client";
import type { HostConfig } from "./config.js";
import { LaunchError } from "./errors.js";
import { ulimitArgs, type ClampedUlimit } from "./ulimits.js";

export interface RunOptions {
  /** CMD ARGS after the image; when non-empty they replace the image's Cmd */
  args?: string[];
  /** replaces the image's Entrypoint and clears its Cmd; a JSON array string (`'["sh","-c"]'`) is split; `""` means none */
  entrypoint?: string;
  /** `K=V` sets, `K` copies K from the host environment (dropped when the host has no K) */
  env?: string[];
  /** `SRC:DST[:OPTIONS]` */
  volumes?: string[];
  workdir?: string;
  user?: string;
  /** overrides the config's default network */
  network?: string;
  name?: string;
  rm?: boolean;
  interactive?: boolean;
  tty?: boolean;
}

/** The container's argv: docker's Entrypoint/Cmd rules. Throws `LAUNCH_NO_COMMAND` when empty. */
export function containerArgv(image: ImageConfig, run: RunOptions): string[] {
  const cfg = image.config ?? {};
  const args = run.args ?? [];
  let argv: string[];
  if (run.entrypoint !== undefined) {
    argv = [...parseEntrypoint(run.entrypoint), ...args];
  } else {
    argv = [...(cfg.Entrypoint ?? []), ...(args.length > 0 ? args : (cfg.Cmd ?? []))];
  }
  if (argv.length === 0) {
    throw new LaunchError("LAUNCH_NO_COMMAND", "no command to run: the image has no Entrypoint or Cmd and none was given", {});
  }
  return argv;
}

function parseEntrypoint(e: string): string[] {
  if (e === "") return [];
  if (e.trimStart().startsWith("[")) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(e);
    } catch {
      parsed = undefined;
    }
    if (Array.isArray(parsed) && parsed.every((x) => typeof x === "string")) return parsed;
    throw new LaunchError("LAUNCH_BAD_OPTION", `--entrypoint ${e} looks like a JSON array but is not an array of strings`, { option: "entrypoint", value: e });
  }
  return [e];
}

/**
 * Image Env, then each override in order: `K=V` replaces K in place (or appends), `K` takes the
 * host's value. Image entries without `=` are not variables and are dropped.
 */
export function mergeEnv(imageEnv: string[] | undefined, overrides: string[] | undefined, hostEnv: NodeJS.ProcessEnv): string[] {
  const vars = new Map<string, string>();
  for (const e of imageEnv ?? []) {
    const i = e.indexOf("=");
    if (i > 0) vars.set(e.slice(0, i), e.slice(i + 1));
  }
  for (const e of overrides ?? []) {
    const i = e.indexOf("=");
    const key = i < 0 ? e : e.slice(0, i);
    if (key === "" || /\s/.test(key)) throw new LaunchError("LAUNCH_BAD_OPTION", `-e ${JSON.stringify(e)}: expected K=V or K`, { option: "env", value: e });
    if (i >= 0) vars.set(key, e.slice(i + 1));
    else if (hostEnv[key] !== undefined) vars.set(key, hostEnv[key]);
  }
  return [...vars].map(([k, v]) => `${k}=${v}`);
}

function checkVolume(v: string): void {
  const parts = v.split(":");
  if (parts.length < 2 || parts.length > 3 || !parts[0] || !parts[1]?.startsWith("/")) {
    throw new LaunchError("LAUNCH_BAD_OPTION", `-v ${JSON.stringify(v)}: expected SRC:DST[:OPTIONS] with an absolute DST`, { option: "volume", value: v });
  }
}

export interface PodmanArgsInput {
  image: ImageConfig;
  run: RunOptions;
  podman: HostConfig["podman"];
  /** already clamped to the host (see `clampUlimits`) */
  ulimits: ClampedUlimit[];
  /** the merged root directory (absolute) */
  rootfs: string;
  /** for `-e K`; defaults to nothing */
  hostEnv?: NodeJS.ProcessEnv;
}

/** The full argv for the podman binary (global flags, `run`, its flags, `--rootfs DIR`, the command). */
export function buildPodmanArgs(input: PodmanArgsInput): string[] {
  const { image, run, podman, rootfs } = input;
  if (!rootfs.startsWith("/")) throw new LaunchError("LAUNCH_BAD_OPTION", `rootfs ${rootfs} must be an absolute path`, { option: "rootfs", value: rootfs });
  const cfg = image.config ?? {};
  const argv = containerArgv(image, run);
  const env = mergeEnv(cfg.Env, run.env, input.hostEnv ?? {});
  for (const v of run.volumes ?? []) checkVolume(v);
  const network = run.network ?? podman.network;
  const workdir = run.workdir || cfg.WorkingDir;
  const user = run.user || cfg.User;
  return [
    ...podman.globalArgs,
    "--runtime",
    podman.runtime,
    "run",
    ...(run.rm ? ["--rm"] : []),
    ...(run.name ? ["--name", run.name] : []),
    ...(run.interactive ? ["--interactive"] : []),
    ...(run.tty ? ["--tty"] : []),
    ...ulimitArgs(input.ulimits),
    ...(network ? ["--network", network] : []),
    ...env.flatMap((e) => ["--env", e]),
    ...(workdir ? ["--workdir", workdir] : []),
    ...(user ? ["--user", user] : []),
    ...(run.volumes ?? []).flatMap((v) => ["--volume", v]),
    ...podman.runArgs,
    "--rootfs",
    rootfs,
    ...argv,
  ];
}
