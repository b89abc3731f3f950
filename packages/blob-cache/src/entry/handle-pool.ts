import { open, type FileHandle } from "node:fs/promises";
import { LRUCache } from "lru-cache";

interface Slot {
  fh: FileHandle;
  refs: number;
  retired: boolean;
}

/**
 * Open file handles of recently read entries: a hit then costs one pread instead of open + pread + close
 * (each a trip through libuv's thread pool). A handle is closed only once no read is using it.
 *
 * A handle may outlive its file's name (evicted or replaced by another process). Reading it is still
 * correct — an entry's bytes never change for its key and every read is checked — but the space is
 * freed only when the handle is closed, so the pool is small.
 */
export class HandlePool {
  private readonly lru: LRUCache<string, Slot>;

  constructor(max: number) {
    this.lru = new LRUCache<string, Slot>({
      max: Math.max(1, max),
      dispose: (slot) => {
        slot.retired = true;
        if (slot.refs === 0) void slot.fh.close().catch(() => undefined);
      },
    });
  }

  /** A handle on `path`, or undefined when the file does not exist. Pair with `release`. */
  async acquire(id: string, path: string): Promise<Slot | undefined> {
    let slot = this.lru.get(id);
    if (!slot) {
      let fh: FileHandle;
      try {
        fh = await open(path, "r");
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        throw err;
      }
      slot = { fh, refs: 0, retired: false };
      this.lru.set(id, slot);
    }
    slot.refs++;
    return slot;
  }

  release(slot: Slot): void {
    slot.refs--;
    if (slot.refs === 0 && slot.retired) void slot.fh.close().catch(() => undefined);
  }

  /** Stop reusing the handle for `id` (file dropped, evicted or rewritten by this process). */
  drop(id: string): void {
    this.lru.delete(id);
  }

  clear(): void {
    this.lru.clear();
  }
}
