import { readFile } from "node:fs/promises";

/** True while a process with this pid exists (EPERM: it exists, it just is not ours to signal). */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** When a process started, in clock ticks since boot (`/proc/PID/stat` field 22); null when it is gone. */
export async function processStartTime(pid: number): Promise<number | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // the command name (field 2) may contain spaces and parentheses: count from the last ')'
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[19]);
  } catch {
    return null;
  }
}

/**
 * True while the process recorded as (pid, start time) is still running. A pid alone can be reused by
 * an unrelated process after a reboot or a wrap-around; the start time tells them apart. A null start
 * time (not recorded) trusts the pid.
 */
export async function isSameProcessAlive(pid: number, startTime: number | null): Promise<boolean> {
  const now = await processStartTime(pid);
  if (now === null) return false;
  return startTime === null || startTime === now;
}
