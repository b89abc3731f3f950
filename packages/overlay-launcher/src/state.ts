/**
 * Per-container (and per-`lazypull mount`) state directories with a small `state.json`, so that a
 * later invocation can find and clean up what a killed one left behind.
 *
 *   <stateRoot>/containers/<id>/{upper,work,merged,state.json}
 *   <stateRoot>/mounts/<key>/{upper,work,state.json}      key = sha256(target dir)[0:16]
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { isSameProcessAlive, mountsUnder, processStartTime } from "@lazypull/host";
import { OverlayError } from "./errors.js";
import type { HostConfig } from "./config.js";

import { removeContainer } from "./remove-container.js";
import { unmountPath } from "./unmount.js";

export type StateKind = "container" | "mount";

export interface RecordedMount {
  path: string;
  /** `overlay` (ours), `fuse` (the caller's lazy layer mount), or anything the caller names */
  kind: string;
}

export interface StateRecord {
  version: 1;
  kind: StateKind;
  id: string;
  ownerPid: number;
  /** the owner's start time (clock ticks, /proc/PID/stat field 22): guards against pid reuse */
  ownerStartTime: number | null;
  createdAt: string;
  /** in the order they were mounted; unmounted in reverse (the overlay before the layers under it) */
  mounts: RecordedMount[];
  /** the podman container, removed if it outlived its owner */
  containerName?: string;
  /** `lazypull mount` target */
  target?: string;
  /** kept on purpose (`--keep`): cleanupLeftovers leaves it */
  kept?: boolean;
}

export interface CleanupReport {
  id: string;
  kind: StateKind;
  dir: string;
  ownerPid: number | null;
  unmounted: string[];
  /** the recorded podman container is gone (removed now, or already) */
  containerRemoved: boolean;
  removed: boolean;
  errors: string[];
}

/** The recorded owner is still the process that wrote the record (a reused pid is not). */
export function isOwnerAlive(rec: Pick<StateRecord, "ownerPid" | "ownerStartTime">): Promise<boolean> {
  return isSameProcessAlive(rec.ownerPid, rec.ownerStartTime);
}

export function mountKey(target: string): string {
  return createHash("sha256").update(resolve(target)).digest("hex").slice(0, 16);
}

export class StateDir {
  constructor(
    readonly dir: string,
    public record: StateRecord,
  ) {}

  get upper(): string {
    return join(this.dir, "upper");
  }
  get work(): string {
    return join(this.dir, "work");
  }
  get merged(): string {
    return this.record.target ?? join(this.dir, "merged");
  }

  /** Writes state.json atomically (a crash never leaves half a record). */
  async save(): Promise<void> {
    const tmp = join(this.dir, `.state.json.${process.pid}.tmp`);
    await writeFile(tmp, `${JSON.stringify(this.record, null, 2)}\n`);
    await rename(tmp, join(this.dir, "state.json"));
  }

  /** Records a mount BEFORE making it, so that a kill in between still leaves a trace. */
  async recordMount(path: string, kind: string): Promise<void> {
    const p = resolve(path);
    if (!this.record.mounts.some((m) => m.path === p)) this.record.mounts.push({ path: p, kind });
    await this.save();
  }

  async update(patch: Partial<Pick<StateRecord, "containerName" | "kept">>): Promise<void> {
    Object.assign(this.record, patch);
    await this.save();
  }

  /**
   * Removes the podman container if asked, unmounts every recorded mount (lazily when busy) and
   * anything still mounted below the dir, then deletes the dir unless `keep`. Never deletes
   * through a live mount: if something stays mounted the dir stays too, and the report says why.
   */
  async destroy(host: Pick<HostConfig, "fusermount" | "podman">, opts: { keep?: boolean; removeContainer?: boolean } = {}): Promise<CleanupReport> {
    const rec = this.record;
    const report: CleanupReport = { id: rec.id, kind: rec.kind, dir: this.dir, ownerPid: rec.ownerPid, unmounted: [], containerRemoved: false, removed: false, errors: [] };
    if (opts.removeContainer && rec.containerName) {
      const res = await removeContainer(host.podman, rec.containerName);
      report.containerRemoved = res.gone;
      if (res.error) report.errors.push(res.error);
    }
    const targets = [...rec.mounts.map((m) => m.path).reverse(), ...(await mountsUnder(this.dir)).map((m) => m.mountPoint)];
    for (const path of [...new Set(targets)]) {
      try {
        const r = await unmountPath(path, host);
        if (r.wasMounted) report.unmounted.push(path);
      } catch (err) {
        report.errors.push((err as Error).message);
      }
    }
    if (opts.keep) {
      await this.update({ kept: true }).catch((err: Error) => report.errors.push(err.message));
      return report;
    }
    const still = [...(await mountsUnder(this.dir)), ...(await Promise.all(rec.mounts.map((m) => mountsUnder(m.path)))).flat()];
    if (still.length > 0) {
      report.errors.push(`not removing ${this.dir}: still mounted: ${still.map((m) => m.mountPoint).join(", ")}`);
      return report;
    }
    try {
      await rm(this.dir, { recursive: true, force: true });
      report.removed = true;
    } catch (err) {
      report.errors.push((err as Error).message);
    }
    return report;
  }
}

function newId(): string {
  return randomBytes(6).toString("hex");
}

/** Creates `<stateRoot>/containers/<id>` (or `mounts/<key>` for a target) with its state.json. */
export async function createState(
  host: Pick<HostConfig, "stateRoot">,
  opts: { kind?: StateKind; id?: string; target?: string } = {},
): Promise<StateDir> {
  const kind = opts.kind ?? (opts.target ? "mount" : "container");
  const id = opts.id ?? (opts.target ? mountKey(opts.target) : newId());
  const dir = join(host.stateRoot, kind === "mount" ? "mounts" : "containers", id);
  // a live lazypull already serves this target: overwriting its record would make our cleanup undo its mounts
  const existing = opts.target ? await readState(dir) : undefined;
  if (existing && existing.record.ownerPid !== process.pid && (await isOwnerAlive(existing.record))) {
    throw new OverlayError("OVERLAY_TARGET_BUSY", `${resolve(opts.target!)} is already mounted by lazypull (pid ${existing.record.ownerPid})`, {
      path: resolve(opts.target!),
      ownerPid: existing.record.ownerPid,
    });
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const state = new StateDir(dir, {
    version: 1,
    kind,
    id,
    ownerPid: process.pid,
    ownerStartTime: await processStartTime(process.pid),
    createdAt: new Date().toISOString(),
    mounts: [],
    ...(opts.target ? { target: resolve(opts.target) } : {}),
  });
  await state.save();
  return state;
}

export async function readState(dir: string): Promise<StateDir | undefined> {
  try {
    const rec = JSON.parse(await readFile(join(dir, "state.json"), "utf8")) as StateRecord;
    if (rec.version !== 1 || typeof rec.ownerPid !== "number" || !Array.isArray(rec.mounts)) return undefined;
    return new StateDir(dir, rec);
  } catch {
    return undefined;
  }
}

/**
 * Finds state dirs whose owner is gone (or that have no readable state.json) and cleans them:
 * removes a leftover podman container, lazily unmounts, deletes. Kept dirs are left alone.
 */
export async function cleanupLeftovers(host: Pick<HostConfig, "stateRoot" | "fusermount" | "podman">): Promise<CleanupReport[]> {
  const reports: CleanupReport[] = [];
  for (const kind of ["containers", "mounts"] as const) {
    const base = join(host.stateRoot, kind);
    const names = await readdir(base).catch(() => [] as string[]);
    for (const name of names) {
      const dir = join(base, name);
      const state = await readState(dir);
      if (state && (state.record.kept || (await isOwnerAlive(state.record)))) continue;
      if (!state && Date.now() - (await dirAgeBase(dir)) < 60_000) continue; // being created right now
      const st =
        state ??
        new StateDir(dir, { version: 1, kind: kind === "mounts" ? "mount" : "container", id: name, ownerPid: -1, ownerStartTime: null, createdAt: "", mounts: [] });
      const report = await st.destroy(host, { removeContainer: true });
      if (!state) report.ownerPid = null;
      reports.push(report);
    }
  }
  return reports;
}

async function dirAgeBase(dir: string): Promise<number> {
  return (await stat(dir).catch(() => undefined))?.mtimeMs ?? 0;
}
