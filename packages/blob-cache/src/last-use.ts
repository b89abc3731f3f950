import { utimes } from "node:fs/promises";
import { join } from "node:path";
import type { EntryIndex } from "./entry-index.js";

/**
 * Last use, the order eviction follows. Other processes and the next run learn an entry's last use from
 * its file's mtime; within this process the index holds a finer one. Writing the mtime on every hit would
 * cost a syscall per read, so it is refreshed at most every 30 s per entry, and all at `close()`.
 */
const TOUCH_INTERVAL_MS = 30_000;

/**
 * Wall-clock ms with sub-ms precision: last uses in one process must order strictly, and must compare
 * right with file mtimes (the kernel's coarse clock, never ahead of this one).
 */
export const preciseNow = (): number => performance.timeOrigin + performance.now();

/**
 * Records a use of entry `rel`. An entry the index does not know yet (written by another process since
 * the last scan) is added when its file size is given, else the use is not recorded.
 */
export function noteUse(index: EntryIndex, dataDir: string, rel: string, size?: number): void {
  const now = preciseNow();
  let slot = index.find(rel);
  if (slot < 0) {
    if (size === undefined) return;
    slot = index.set(rel, size, now, 0, now);
    if (slot < 0) return;
  }
  index.setLastUse(slot, now);
  if (now - index.touched(slot) > TOUCH_INTERVAL_MS) {
    index.setTouched(slot, now);
    void utimes(join(dataDir, rel), now / 1000, now / 1000).catch(() => undefined);
  }
}

/** Writes last uses newer than the files' mtimes, so other processes and the next run see them. */
export async function flushLastUse(index: EntryIndex, dataDir: string): Promise<void> {
  const stale: number[] = [];
  const ids: number[] = [];
  for (const slot of index.slots()) {
    if (index.lastUse(slot) > index.touched(slot)) {
      stale.push(slot);
      ids.push(index.ticket(slot));
    }
  }
  for (let i = 0; i < stale.length; i += 64) {
    const batch: Promise<void>[] = [];
    for (let j = i; j < Math.min(i + 64, stale.length); j++) {
      const slot = stale[j]!;
      if (!index.holds(slot, ids[j]!)) continue; // forgotten meanwhile: its file is gone
      const lastUse = index.lastUse(slot);
      index.setTouched(slot, lastUse);
      batch.push(utimes(join(dataDir, index.rel(slot)), lastUse / 1000, lastUse / 1000).catch(() => undefined));
    }
    await Promise.all(batch);
  }
}
