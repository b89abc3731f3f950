import { mkdir, mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sweepDeadPidEntries } from "@lazypull/host";

/**
 * Where conversions keep their temporary blobs: `<tmp>/lazypull-convert/<pid>-XXXXXX`, a directory
 * lazypull owns. A converting process that is killed cannot remove its own (tens of MB per layer), so
 * every conversion first removes those of processes that no longer exist.
 */
export const WORK_PARENT = "lazypull-convert";

/** Removes the work directories of dead processes under `parent`; returns their names. */
export function sweepDeadWorkDirs(parent: string): Promise<string[]> {
  // a pid reused by another process keeps its directory until that one is gone too: never remove a live one
  return sweepDeadPidEntries(parent, (name) => Number(/^(\d+)-/.exec(name)?.[1]) || undefined);
}

const swept = new Set<string>();

/** A fresh work directory for this process under `tmpDir` (default: the OS's), after one sweep per process and parent. */
export async function makeWorkDir(tmpDir = tmpdir()): Promise<string> {
  const parent = join(tmpDir, WORK_PARENT);
  await mkdir(parent, { recursive: true, mode: 0o700 });
  if (!swept.has(parent)) {
    swept.add(parent);
    await sweepDeadWorkDirs(parent);
  }
  return mkdtemp(join(parent, `${process.pid}-`));
}
