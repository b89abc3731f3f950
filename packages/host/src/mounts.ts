/** Reading `/proc/self/mountinfo`: the kernel's word on what is mounted where. */
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";

export interface MountEntry {
  mountPoint: string;
  fsType: string;
  source: string;
}

/** mountinfo escapes space, tab, newline and backslash as `\ooo` octal. */
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split("\n")) {
    if (!line) continue;
    const [left, right] = line.split(" - ");
    if (!left || !right) continue;
    const f = left.split(" ");
    const r = right.split(" ");
    if (f.length < 5 || r.length < 2) continue;
    out.push({ mountPoint: unescape(f[4]!), fsType: r[0]!, source: unescape(r[1]!) });
  }
  return out;
}

/** Every mount in this process's mount namespace, in mount order. */
export async function readMounts(path = "/proc/self/mountinfo"): Promise<MountEntry[]> {
  return parseMountinfo(await readFile(path, "utf8"));
}

export async function isMountPoint(path: string): Promise<boolean> {
  const abs = resolve(path);
  return (await readMounts()).some((m) => m.mountPoint === abs);
}

/** Mounts at or below `dir`, deepest first (the order to unmount them in). */
export async function mountsUnder(dir: string): Promise<MountEntry[]> {
  const abs = resolve(dir);
  const prefix = abs.endsWith("/") ? abs : `${abs}/`;
  return (await readMounts())
    .filter((m) => m.mountPoint === abs || m.mountPoint.startsWith(prefix))
    .sort((a, b) => b.mountPoint.length - a.mountPoint.length);
}
