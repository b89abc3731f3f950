import { isProcessAlive } from "@lazypull/host";
import { mkdir, open, readdir, rename, unlink } from "node:fs/promises";
import { basename, join } from "node:path";
import type { Paths } from "../layout.js";
import { ignoreMissing } from "../missing.js";

/**
 * Writing entry files, atomically: an entry is written under `tmp/<name>.<pid>.<n>` and renamed into
 * `data/`, so a reader (in any process) sees the old file, the new one, or none, never a torn one. The
 * temp names are made here and only here, so this is also where the leftovers of dead writers are found.
 */
export class EntryWriter {
  private readonly madeDirs = new Set<string>();
  private counter = 0;

  constructor(private readonly paths: Paths) {}

  /** Writes `header` + `data` as the entry at `data/<rel>`, replacing any file there. */
  async write(rel: string, header: Buffer, data: Buffer): Promise<void> {
    const tmp = join(this.paths.tmp, `${basename(rel)}.${process.pid}.${++this.counter}`);
    const final = join(this.paths.data, rel);
    try {
      const fh = await open(tmp, "wx");
      try {
        const total = header.length + data.length;
        let written = (await fh.writev([header, data], 0)).bytesWritten;
        while (written < total) {
          const rest = Buffer.concat([header, data]).subarray(written);
          written += (await fh.write(rest, 0, rest.length, written)).bytesWritten;
        }
      } finally {
        await fh.close();
      }
      const fanDir = join(this.paths.data, rel.slice(0, 2));
      if (!this.madeDirs.has(fanDir)) {
        await mkdir(fanDir, { recursive: true });
        this.madeDirs.add(fanDir);
      }
      // No fsync: a process crash keeps the page cache, and after a power loss a torn or empty file fails
      // its checksums and is dropped, never served.
      await rename(tmp, final);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
  }
}

/** Removes temp files whose writer died (kill -9, crash): they never became entries. Returns how many. */
export async function removeDeadTemps(tmpDir: string): Promise<number> {
  let removed = 0;
  for (const name of await readdir(tmpDir)) {
    const pid = Number(name.split(".").at(-2));
    if (pid === process.pid || isProcessAlive(pid)) continue;
    await unlink(join(tmpDir, name)).catch(ignoreMissing);
    removed++;
  }
  return removed;
}
