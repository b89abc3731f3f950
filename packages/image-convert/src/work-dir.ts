import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * Where conversions keep their temporary blobs: `<tmp>/lazypull-convert/<pid>-XXXXXX`, a directory
 * lazypull owns. A converting process that is killed cannot remove its own (tens of MB per layer), so
 * every conversion first removes those of processes that no longer exist.
 */
export const WORK_PARENT = "lazypull-convert";

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Removes the work directories of dead processes under `parent`; returns their names. */
export async function sweepDeadWorkDirs(parent: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(parent);
  } catch {
    return [];
  }
  const dead = names.filter((n) => {
    const pid = Number(/^(\d+)-/.exec(n)?.[1]);
    // a pid reused by another process keeps its directory until that one is gone too: never remove a live one
    return Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && !isAlive(pid);
  });
  await Promise.all(dead.map((n) => rm(join(parent, n), { recursive: true, force: true })));
  return dead;
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
