import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { isProcessAlive } from "./process.js";

/**
 * Removes the entries of `dir` that belong to processes that no longer exist: `pidOf(name)` gives the
 * owner pid an entry's name carries (undefined: not ours, left alone). Temporary files and directories
 * of a killed process have nobody else to remove them. Returns the names removed; a missing `dir` is
 * nothing to sweep.
 */
export async function sweepDeadPidEntries(dir: string, pidOf: (name: string) => number | undefined): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const dead = names.filter((n) => {
    const pid = pidOf(n);
    return pid !== undefined && pid !== process.pid && !isProcessAlive(pid);
  });
  await Promise.all(dead.map((n) => rm(join(dir, n), { recursive: true, force: true })));
  return dead;
}
