import { isProcessAlive } from "@lazypull/host";
import { readdir, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { decodeBlob, encodeBlob } from "./layout.js";
import { ignoreMissing } from "./missing.js";

/**
 * Pins keep a blob's entries from eviction by any process, e.g. the CLI's `prune` must not remove the
 * chunks of a layer the daemon has mounted. Within this process a pin is a count per blob; across
 * processes it is a file `pins/<blob>.<pid>`, present while the count is above zero and honoured while
 * that pid lives, so a crashed process cannot pin anything for good.
 */
export class Pins {
  private readonly counts = new Map<string, number>();
  /** pin-file writes and removals, in call order (pin/unpin are synchronous for callers) */
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly dir: string) {}

  /** blobs pinned by this process */
  get size(): number {
    return this.counts.size;
  }

  pin(blob: string): void {
    const enc = encodeBlob(blob);
    const n = this.counts.get(blob) ?? 0;
    this.counts.set(blob, n + 1);
    if (n === 0) this.io(() => writeFile(join(this.dir, `${enc}.${process.pid}`), `${process.pid}\n`));
  }

  /** Takes one count off; true when that was the last one (the blob is no longer pinned by this process). */
  unpin(blob: string): boolean {
    const n = this.counts.get(blob);
    if (!n) return false;
    if (n > 1) {
      this.counts.set(blob, n - 1);
      return false;
    }
    this.counts.delete(blob);
    this.io(() => unlink(join(this.dir, `${encodeBlob(blob)}.${process.pid}`)).catch(ignoreMissing));
    return true;
  }

  /** Drops every pin of this process and removes its pin files (at close). */
  async releaseAll(): Promise<void> {
    for (const blob of [...this.counts.keys()]) {
      this.counts.set(blob, 1);
      this.unpin(blob);
    }
    await this.settled();
  }

  /** Resolves when the pin files are in step with the counts. */
  settled(): Promise<void> {
    return this.chain;
  }

  /** Blobs pinned by this process or by any live process (stale pin files of dead ones are removed). */
  async live(): Promise<Set<string>> {
    await this.chain;
    const out = new Set(this.counts.keys());
    for (const name of await readdir(this.dir)) {
      const dot = name.lastIndexOf(".");
      const blob = decodeBlob(name.slice(0, dot));
      const pid = Number(name.slice(dot + 1));
      if (!blob) continue;
      // Our own files are in step with the counts (chain settled); others' count while their process lives.
      if (pid === process.pid || isProcessAlive(pid)) {
        out.add(blob);
      } else {
        await unlink(join(this.dir, name)).catch(ignoreMissing);
      }
    }
    return out;
  }

  private io(fn: () => Promise<unknown>): void {
    this.chain = this.chain.then(fn).then(
      () => undefined,
      () => undefined,
    );
  }
}
