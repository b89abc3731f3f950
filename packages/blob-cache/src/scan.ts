import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { ScannedEntries, type EntryIndex } from "./entry-index.js";
import { preciseNow } from "./last-use.js";
import { undefinedIfMissing } from "./missing.js";

/**
 * The rescan: there is no index file, the directory is the index. Other processes write and evict
 * behind this one's back, so at open and before eviction the index takes sizes and mtimes from a scan of
 * `data/` (names and `stat`, no file opened). Kept apart because it is the one costly operation of the
 * cache (a `stat` per entry): callers decide when it is worth it.
 */

/**
 * Brings `index` in line with `dataDir`: entries found are added or updated (a later mtime is a later
 * use by someone), entries gone are passed to `forget`. Entries this process added while the scan ran
 * are kept as they are: they are fresher than what the scan saw.
 */
export async function scanDataDir(index: EntryIndex, dataDir: string, forget: (rel: string) => void): Promise<void> {
  const started = preciseNow();
  const found = new ScannedEntries();
  for (const fan of await readdir(dataDir)) {
    if (!/^[0-9a-f]{2}$/.test(fan)) continue;
    const names = (await readdir(join(dataDir, fan)).catch(undefinedIfMissing)) ?? [];
    await Promise.all(
      names.map(async (name) => {
        const blob = found.blobOf(fan, name);
        if (blob < 0) return;
        const st = await stat(join(dataDir, fan, name)).catch(undefinedIfMissing);
        if (st) found.add(fan, name, blob, st.size, st.mtimeMs);
      }),
    );
  }
  const seen = new Uint8Array(index.slotLimit + found.count); // slots found on disk
  for (let i = 0; i < found.count; i++) {
    const mtime = found.mtime(i);
    let slot = index.findScanned(found, i);
    if (slot >= 0) {
      seen[slot] = 1;
      if (index.addedAt(slot) >= started) continue; // written by us during the scan: fresher than the stat
      index.setSize(slot, found.size(i));
      index.setLastUse(slot, Math.max(index.lastUse(slot), mtime));
      index.setTouched(slot, Math.max(index.touched(slot), mtime));
    } else {
      slot = index.addScanned(found, i, mtime, mtime, 0);
      if (slot >= 0) seen[slot] = 1; // blobOf only passes names whose blob decodes
    }
  }
  for (const slot of index.slots()) {
    if (!seen[slot] && index.addedAt(slot) < started) forget(index.rel(slot));
  }
}
