import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { spawn } from "node:child_process";
import tarStream from "tar-stream";

export interface TreeEntry {
  path: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  nlink?: number;
  ino?: number;
  size?: number;
  sha256?: string;
  link?: string;
  rdev?: number;
}

const IFMT: Record<string, number> = {
  file: 0o100000,
  "contiguous-file": 0o100000,
  directory: 0o040000,
  symlink: 0o120000,
  "character-device": 0o020000,
  "block-device": 0o060000,
  fifo: 0o010000,
};

const norm = (p: string) => p.replace(/^(\.\/)+/, "").replace(/^\/+/, "").replace(/\/+$/, "").replace(/^\.$/, "");

/**
 * What a tar should look like once mounted: one entry per path with its full mode, owner, mtime,
 * content hash, link target or device number; hardlinks get their target's content and a shared nlink.
 */
export async function tarSnapshot(tarPath: string): Promise<Map<string, TreeEntry>> {
  const entries = new Map<string, TreeEntry>();
  const linkOf = new Map<string, string>();
  const extract = tarStream.extract();
  createReadStream(tarPath).pipe(extract);
  for await (const entry of extract) {
    const h = entry.header;
    const path = norm(h.name);
    const base = { path, uid: h.uid ?? 0, gid: h.gid ?? 0, mtime: Math.floor((h.mtime?.getTime() ?? 0) / 1000) };
    if (h.type === "link") {
      const target = norm(h.linkname ?? "");
      linkOf.set(path, linkOf.get(target) ?? target);
      entry.resume();
      continue;
    }
    const ifmt = IFMT[h.type ?? ""];
    if (ifmt === undefined) {
      entry.resume();
      continue;
    }
    const e: TreeEntry = { ...base, mode: ifmt | ((h.mode ?? 0) & 0o7777) };
    if (ifmt === 0o100000) {
      const hash = createHash("sha256");
      let size = 0;
      for await (const b of entry as AsyncIterable<Buffer>) {
        hash.update(b);
        size += b.length;
      }
      e.size = size;
      e.sha256 = hash.digest("hex");
    } else {
      entry.resume();
      if (ifmt === 0o120000) e.link = h.linkname ?? "";
      if (ifmt === 0o020000 || ifmt === 0o060000) e.rdev = devNumber(h.devmajor ?? 0, h.devminor ?? 0);
    }
    entries.set(path, e);
    linkOf.delete(path);
  }
  const nlinks = new Map<string, number>();
  for (const t of linkOf.values()) nlinks.set(t, (nlinks.get(t) ?? 1) + 1);
  for (const [p, t] of linkOf) {
    const target = entries.get(t)!;
    entries.set(p, { ...target, path: p });
  }
  for (const [p, e] of entries) {
    const t = linkOf.get(p) ?? p;
    if (e.mode >> 12 !== 0o04) e.nlink = nlinks.get(t) ?? 1;
  }
  if (!entries.has("")) entries.set("", { path: "", mode: 0o040755, uid: 0, gid: 0, mtime: 0 });
  return entries;
}

export function devNumber(major: number, minor: number): number {
  return ((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12)) >>> 0;
}

/** Snapshot of a directory tree taken by a child process (see snapshot-tree.mjs). */
export function mountSnapshot(dir: string): Promise<Map<string, TreeEntry>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [new URL("./snapshot-tree.mjs", import.meta.url).pathname, dir], {
      env: { ...process.env, UV_THREADPOOL_SIZE: "16" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    let err = "";
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => (err += b.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) return reject(new Error(`snapshot of ${dir} failed (${code}): ${err}`));
      const map = new Map<string, TreeEntry>();
      for (const line of Buffer.concat(out).toString().split("\n")) {
        if (!line) continue;
        const e = JSON.parse(line) as TreeEntry;
        map.set(e.path, e);
      }
      resolve(map);
    });
  });
}
