/**
 * The whole `lazypull run` / `mount` / `umount` sequence on top of lower directories: state dir,
 * overlay, podman, and cleanup on every path out.
 */
import type { ImageConfig } from "@lazypull/registry-client";
import { processCleanup, hookProcessSignals, type CleanupStack } from "./cleanup-stack.js";
import type { HostConfig } from "./config.js";
import { OverlayError } from "./errors.js";
import { readMounts } from "@lazypull/host";
import { mountOverlay, type OverlayKind, type OverlayMount } from "./overlay.js";
import { buildPodmanArgs, type RunOptions } from "./podman-args.js";
import { runContainer, type RunContainerResult } from "./run-container.js";
import { createState, isOwnerAlive, mountKey, readState, type CleanupReport, type StateDir } from "./state.js";
import { clampUlimits, readHostLimits, type ClampedUlimit } from "./ulimits.js";
import { join, resolve } from "node:path";
import { unmountPath } from "./unmount.js";

export interface LaunchOptions {
  host: HostConfig;
  /** TOP-MOST FIRST (reverse of the manifest's layer order), OCI form */
  lowerDirs: string[];
  /** the same layers in overlay form, for kernel overlayfs (see `MountOverlayOptions`) */
  overlayLowerDirs?: string[];
  image: ImageConfig;
  run: RunOptions;
  /**
   * A state dir made by the caller with `createState(host)`, e.g. to record its FUSE mount in it
   * first; the caller then removes it (`state.destroy`). Without one, the launcher makes and removes its own.
   */
  state?: StateDir;
  /** leave the state dir (upper: the container's changes) in place; mounts are still undone */
  keep?: boolean;
  stdio?: "inherit" | "capture";
  input?: string | Buffer;
  /** defaults to the process-wide stack; signals are hooked to it once */
  cleanup?: CleanupStack;
  /** for `-e K`; default `process.env` */
  hostEnv?: NodeJS.ProcessEnv;
}

export interface LaunchResult extends RunContainerResult {
  id: string;
  stateDir: string;
  containerName: string;
  /** which overlay stacked the layers */
  overlay: OverlayKind;
  /** why kernel overlayfs was not used, when it was not */
  overlayFallbackReason?: string;
  /** ulimits as applied (with `clampedFrom` where the host forced them lower) */
  ulimits: ClampedUlimit[];
  podmanArgs: string[];
  cleanup: CleanupReport | null;
}

/** The ulimits of the config, clamped to this process's hard limits. */
export async function effectiveUlimits(host: Pick<HostConfig, "ulimits">): Promise<ClampedUlimit[]> {
  return clampUlimits(host.ulimits, await readHostLimits());
}

/**
 * Mounts the overlay in a per-container state dir, runs podman on it, and undoes it all.
 * Resolves with the container's exit code; rejects (after cleaning up) when it cannot start.
 */
export async function launchContainer(opts: LaunchOptions): Promise<LaunchResult> {
  const { host } = opts;
  const stack = opts.cleanup ?? processCleanup;
  hookProcessSignals({ stack });
  const ownState = !opts.state;
  const state = opts.state ?? (await createState(host));
  const containerName = opts.run.name ?? `lazypull-${state.record.id}`;
  let overlay: OverlayMount | undefined;
  let report: CleanupReport | null = null;
  const undo = async (): Promise<void> => {
    if (ownState) {
      report = await state.destroy(host, { keep: opts.keep });
      return;
    }
    if (overlay) await overlay.unmount();
    if (opts.keep) await state.update({ kept: true });
  };
  const handle = stack.push(`overlay ${state.record.id}`, undo);
  try {
    await state.update({ containerName });
    await state.recordMount(state.merged, "overlay");
    overlay = await mountOverlay({ lowerDirs: opts.lowerDirs, overlayLowerDirs: opts.overlayLowerDirs, stateDir: state.dir, host });
    const ulimits = await effectiveUlimits(host);
    const podmanArgs = buildPodmanArgs({
      image: opts.image,
      run: { ...opts.run, name: containerName },
      podman: host.podman,
      ulimits,
      rootfs: overlay.merged,
      hostEnv: opts.hostEnv ?? process.env,
    });
    const res = await runContainer({ podman: host.podman, args: podmanArgs, containerName, stdio: opts.stdio, input: opts.input });
    const outcome = await handle.run();
    if (outcome && !outcome.ok) throw new OverlayError("OVERLAY_UNMOUNT_FAILED", `cleanup after the container failed: ${outcome.error}`, { stateDir: state.dir });
    return {
      ...res,
      id: state.record.id,
      stateDir: state.dir,
      containerName,
      overlay: overlay.kind,
      ...(overlay.fallbackReason ? { overlayFallbackReason: overlay.fallbackReason } : {}),
      ulimits,
      podmanArgs,
      cleanup: report,
    };
  } finally {
    await handle.run();
  }
}

export interface ImageRootMount {
  target: string;
  state: StateDir;
  overlay: OverlayMount;
}

/**
 * `lazypull mount IMAGE DIR`: the merged root at `target` (created if missing), upper/work in
 * `<stateRoot>/mounts/<key>`, recorded by target. Pass `state` (from `createState(host, { target })`)
 * to record the FUSE mount there first. A record of a dead owner is cleaned first; a live one is
 * `OVERLAY_TARGET_BUSY`.
 */
export async function mountImageRoot(opts: { host: HostConfig; lowerDirs: string[]; overlayLowerDirs?: string[]; target: string; state?: StateDir }): Promise<ImageRootMount> {
  const { host } = opts;
  const target = resolve(opts.target);
  const existing = opts.state ? undefined : await readState(join(host.stateRoot, "mounts", mountKey(target)));
  if (existing) {
    if (await isOwnerAlive(existing.record)) {
      throw new OverlayError("OVERLAY_TARGET_BUSY", `${target} is already mounted by lazypull (pid ${existing.record.ownerPid})`, { path: target, ownerPid: existing.record.ownerPid });
    }
    await existing.destroy(host, { removeContainer: false });
  }
  const state = opts.state ?? (await createState(host, { target }));
  try {
    await state.recordMount(target, "overlay");
    const overlay = await mountOverlay({ lowerDirs: opts.lowerDirs, overlayLowerDirs: opts.overlayLowerDirs, stateDir: state.dir, merged: target, host });
    return { target, state, overlay };
  } catch (err) {
    if (!opts.state) await state.destroy(host);
    throw err;
  }
}

/**
 * `lazypull umount DIR`: unmounts the overlay at DIR and every mount recorded with it, removes the
 * record, and sends SIGTERM to the owning process (the one serving the FUSE layers) if it lives.
 * A lazypull-less fuse-overlayfs at DIR is unmounted too; nothing at all is `OVERLAY_NOT_MOUNTED`.
 */
export async function unmountImageRoot(opts: { host: HostConfig; target: string; signalOwner?: boolean }): Promise<CleanupReport> {
  const { host } = opts;
  const target = resolve(opts.target);
  const state = await readState(join(host.stateRoot, "mounts", mountKey(target)));
  if (!state) {
    const m = (await readMounts()).find((e) => e.mountPoint === target);
    if (!m) throw new OverlayError("OVERLAY_NOT_MOUNTED", `nothing is mounted at ${target}`, { path: target });
    await unmountPath(target, host);
    return { id: mountKey(target), kind: "mount", dir: "", ownerPid: null, unmounted: [target], containerRemoved: false, removed: false, errors: [] };
  }
  const alive = await isOwnerAlive(state.record);
  const report = await state.destroy(host);
  if (alive && opts.signalOwner !== false && state.record.ownerPid !== process.pid) {
    try {
      process.kill(state.record.ownerPid, "SIGTERM");
    } catch {
      // gone in the meantime
    }
  }
  return report;
}

