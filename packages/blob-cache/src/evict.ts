import { readFile, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { isProcessAlive, sleep } from "@lazypull/host";
import type { EntryIndex } from "./entry-index.js";
import { ignoreMissing } from "./missing.js";

/**
 * Eviction: keeping the disk under `maxBytes` by removing least recently used, unpinned entries. Kept
 * apart from the cache's verbs because when to evict is a policy of its own (writers wait when over
 * the cap, a background look now and then, a cache that pins hold over its cap) and because it must be
 * one process at a time: `evict.lock`, created exclusively and holding the evictor's pid.
 */

export interface EvictResult {
  evicted: number;
  freedBytes: number;
  /** another process held the eviction lock: nothing was done */
  busy: boolean;
}

interface Pass extends EvictResult {
  /** every unpinned entry was tried and usage is still over the target: pins hold it there */
  heldByPins: boolean;
}

/** What eviction works on, owned by the cache. */
export interface EvictionDeps {
  index: EntryIndex;
  dataDir: string;
  lockPath: string;
  maxBytes: number;
  /** a pass started by a put evicts down to this, so that it does not run on every put */
  lowWater: number;
  /** rescans the directory into the index (the cache's own rescan: it also calls `scanned`) */
  rescan(): Promise<void>;
  /** blobs pinned by any live process */
  pinned(): Promise<Set<string>>;
  /** forgets an entry whose file is being removed */
  forget(rel: string): void;
  /** counts one evicted entry */
  evicted(): void;
}

/** Eviction locks held by this process (several caches in one process share a pid). */
const heldLocks = new Set<string>();

/** One evictor at a time across processes; a lock left by a dead process is taken over. */
async function tryLock(path: string): Promise<boolean> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(path, `${process.pid}\n`, { flag: "wx" });
      heldLocks.add(path);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const owner = Number((await readFile(path, "utf8").catch(() => "")).trim());
    const stale = owner === process.pid ? !heldLocks.has(path) : !isProcessAlive(owner);
    if (!stale) return false;
    await unlink(path).catch(ignoreMissing);
  }
  return false;
}

async function unlock(path: string): Promise<void> {
  heldLocks.delete(path);
  await unlink(path).catch(ignoreMissing);
}

export class Evictor {
  /** the pass running now (started by a put or by `evictTo`): one at a time in this process */
  private run: Promise<Pass> | undefined;
  private bytesSinceScan = 0;
  /**
   * Set when a put's pass could not get under its target because of pins: until something is unpinned
   * or a quarter of the cap has been written, passes skip their rescan. Without this a cache that pins
   * hold over its cap rescanned the whole directory (up to 3 times) on every put.
   */
  private heldByPins = false;
  /** unpins so far: a pass that started before an unpin judged by pins that no longer hold */
  private unpins = 0;
  /**
   * The scan started at open has ended: until then the index holds only this process's puts, too little
   * to judge usage by.
   */
  private ready = false;
  /** puts came before the first scan ended: their check runs when it does */
  private checkPending = false;
  private checkAfterScan: Promise<void> | undefined;

  constructor(private readonly d: EvictionDeps) {}

  /** A rescan just ran: usage is known. */
  scanned(): void {
    this.bytesSinceScan = 0;
  }

  /** The scan started at open has ended (or failed: the next pass scans again). */
  firstScanEnded(): void {
    this.ready = true;
    if (this.checkPending) this.checkAfterScan = this.written(0).catch(() => undefined);
  }

  /** A blob was unpinned by this process: its entries can go, worth a full pass again. */
  unpinned(): void {
    this.unpins++;
    this.heldByPins = false;
  }

  /** After a put of `bytes`: over the cap the writer waits for eviction (backpressure on writers only: reads never wait). */
  async written(bytes: number): Promise<void> {
    this.bytesSinceScan += bytes;
    if (!this.ready) {
      // Waiting here would hold the first cold reads (getOrFetch stores before it returns) behind the
      // whole scan: the check runs once the scan has ended, and only puts after it wait for eviction.
      this.checkPending = true;
      return;
    }
    const { index, maxBytes } = this.d;
    if (index.bytes > maxBytes) {
      for (let i = 0; i < 3 && index.bytes > maxBytes; i++) {
        const pass = await this.start();
        if (pass.busy || pass.heldByPins) break; // another pass could not do better
      }
    } else if (this.bytesSinceScan > maxBytes / 4) {
      // Other processes write too; look at the real usage now and then.
      void this.start().catch(() => undefined);
    }
  }

  /** Evicts until usage ≤ `target`, retrying (for about 5 s) while another process holds the lock. */
  async evictTo(target: number): Promise<EvictResult> {
    await this.run?.catch(() => undefined);
    for (let i = 0; ; i++) {
      const run = this.pass(target, true);
      this.run = run;
      const { evicted, freedBytes, busy } = await run.finally(() => {
        if (this.run === run) this.run = undefined;
      });
      if (!busy || i >= 50) return { evicted, freedBytes, busy };
      await sleep(100);
    }
  }

  /** Resolves when no pass is running. */
  async idle(): Promise<void> {
    await this.checkAfterScan;
    await this.run?.catch(() => undefined);
  }

  /** A pass down to the low watermark, or the one already running. */
  private start(): Promise<Pass> {
    if (!this.run) {
      const rescan = !this.heldByPins || this.bytesSinceScan > this.d.maxBytes / 4;
      const unpins = this.unpins;
      const run = this.pass(this.d.lowWater, rescan).then((pass) => {
        if (!pass.busy) this.heldByPins = pass.heldByPins && unpins === this.unpins;
        return pass;
      });
      this.run = run;
      void run
        .finally(() => {
          if (this.run === run) this.run = undefined;
        })
        .catch(() => undefined);
    }
    return this.run;
  }

  /**
   * One pass under the lock. With `rescan` it first takes usage from the disk; without, it evicts from
   * what the index knows (what this process wrote since the last scan, and what that scan found).
   */
  private async pass(target: number, rescan: boolean): Promise<Pass> {
    const { index, dataDir, lockPath } = this.d;
    let evicted = 0;
    let freedBytes = 0;
    if (!(await tryLock(lockPath))) return { evicted, freedBytes, busy: true, heldByPins: false };
    try {
      if (rescan) await this.d.rescan();
      if (index.bytes <= target) return { evicted, freedBytes, busy: false, heldByPins: false };
      const pinned = await this.d.pinned();
      const victims: number[] = [];
      let pinnedEntries = 0;
      for (const slot of index.slots()) {
        if (pinned.has(index.blob(slot))) pinnedEntries++;
        else victims.push(slot);
      }
      victims.sort((a, b) => index.lastUse(a) - index.lastUse(b));
      const ids = victims.map((slot) => index.ticket(slot));
      const added = victims.map((slot) => index.addedAt(slot));
      for (let i = 0; i < victims.length; i++) {
        if (index.bytes <= target) break;
        const slot = victims[i]!;
        // rewritten by us meanwhile (or forgotten and found again): it is fresh now
        if (!index.holds(slot, ids[i]!) || index.addedAt(slot) !== added[i]) continue;
        const rel = index.rel(slot);
        const size = index.size(slot);
        this.d.forget(rel);
        await unlink(join(dataDir, rel)).catch(ignoreMissing);
        evicted++;
        freedBytes += size;
        this.d.evicted();
      }
      return { evicted, freedBytes, busy: false, heldByPins: index.bytes > target && pinnedEntries > 0 };
    } finally {
      await unlock(lockPath);
    }
  }
}
