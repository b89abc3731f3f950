// Run in a child process: the mount must never be read by the process that serves it (libuv's pool
// threads blocked in read(2) on the mount would starve the inflate/cache work that answers them).
// Prints one JSON object per line describing every entry below ROOT, content hashed.
import { createHash } from "node:crypto";
import { join } from "node:path";
import { lstatSync, readdirSync, readFileSync, readlinkSync } from "node:fs";

const root = process.argv[2];
const out = [];
function visit(rel) {
  const abs = rel ? join(root, rel) : root;
  const st = lstatSync(abs, { bigint: false });
  const e = { path: rel, mode: st.mode, uid: st.uid, gid: st.gid, nlink: st.nlink, ino: st.ino, mtime: Math.floor(st.mtimeMs / 1000) };
  if (st.isFile()) {
    e.size = st.size;
    e.sha256 = createHash("sha256").update(readFileSync(abs)).digest("hex");
  } else if (st.isSymbolicLink()) e.link = readlinkSync(abs);
  else if (st.isCharacterDevice() || st.isBlockDevice()) e.rdev = st.rdev;
  out.push(e);
  if (st.isDirectory()) for (const n of readdirSync(abs).sort()) visit(rel ? `${rel}/${n}` : n);
}
visit("");
process.stdout.write(out.map((e) => JSON.stringify(e)).join("\n") + "\n");
