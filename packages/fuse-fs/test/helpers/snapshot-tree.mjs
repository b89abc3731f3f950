// Run in a child process: the mount must never be read by the process that serves it (libuv's pool
// threads blocked in read(2) on the mount would starve the inflate/cache work that answers them).
// Prints one JSON object per line describing every entry below ROOT, content hashed. Walks with
// 16 operations in flight: the mount answers concurrently.
import { createHash } from "node:crypto";
import { lstat, readdir, readFile, readlink } from "node:fs/promises";
import { join } from "node:path";

const root = process.argv[2];
const out = [];
const queue = [""];
let active = 0;
await new Promise((resolve, reject) => {
  const pump = () => {
    if (queue.length === 0 && active === 0) return resolve();
    while (active < 16 && queue.length > 0) {
      const rel = queue.shift();
      active += 1;
      visit(rel).then(
        () => {
          active -= 1;
          pump();
        },
        reject,
      );
    }
  };
  pump();
});
async function visit(rel) {
  const abs = rel ? join(root, rel) : root;
  const st = await lstat(abs);
  const e = { path: rel, mode: st.mode, uid: st.uid, gid: st.gid, nlink: st.nlink, ino: st.ino, mtime: Math.floor(st.mtimeMs / 1000) };
  if (st.isFile()) {
    e.size = st.size;
    e.sha256 = createHash("sha256").update(await readFile(abs)).digest("hex");
  } else if (st.isSymbolicLink()) e.link = await readlink(abs);
  else if (st.isCharacterDevice() || st.isBlockDevice()) e.rdev = st.rdev;
  out.push(e);
  if (st.isDirectory()) for (const n of (await readdir(abs)).sort()) queue.push(rel ? `${rel}/${n}` : n);
}
process.stdout.write(out.map((e) => JSON.stringify(e)).join("\n") + "\n");
