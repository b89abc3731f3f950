// An ordinary user for rootless tests and the bench, made the way a host admin would: `useradd`, a
// subordinate id range, /dev/fuse open to users (as udev makes it on most hosts) and a runtime dir.
// Whatever mode had to change is remembered so it can be put back.
import { chmod, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { run } from "./run.js";
import { REPO_ROOT } from "./source.js";

export interface TestUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
  /** `$XDG_RUNTIME_DIR` (`/run/user/UID`, made here: no login session makes it) */
  runtimeDir: string;
}

/** modes changed by `openHostToUsers`, to put back */
const changedModes: { path: string; mode: number }[] = [];

/**
 * The user `name` (created if missing), with a subordinate uid/gid range when `subids` (and none when
 * not: for testing the error), and its runtime dir.
 */
export async function ensureTestUser(name: string, opts: { subids?: boolean } = {}): Promise<TestUser> {
  const subids = opts.subids ?? true;
  const exists = await run("id", ["-u", name], { allowFail: true });
  if (exists.code !== 0) await run("useradd", ["-m", "-s", "/bin/sh", "-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0", name]);
  const uid = Number((await run("id", ["-u", name])).stdout.trim());
  const gid = Number((await run("id", ["-g", name])).stdout.trim());
  const home = (await run("getent", ["passwd", name])).stdout.trim().split(":")[5] ?? `/home/${name}`;
  for (const [file, flag] of [
    ["/etc/subuid", "--add-subuids"],
    ["/etc/subgid", "--add-subgids"],
  ] as const) {
    const text = await readFile(file, "utf8").catch(() => "");
    const has = text.split("\n").some((l) => l.startsWith(`${name}:`));
    // a range per uid far above the ones useradd hands out by default
    const start = 1_000_000 + (uid % 1000) * 65536;
    if (subids && !has) await run("usermod", [flag, `${start}-${start + 65535}`, name]);
    if (!subids && has) await writeFile(file, text.split("\n").filter((l) => !l.startsWith(`${name}:`)).join("\n"));
  }
  const runtimeDir = `/run/user/${uid}`;
  await mkdir(runtimeDir, { recursive: true, mode: 0o700 });
  await run("chown", [`${uid}:${gid}`, runtimeDir]);
  return { name, uid, gid, home, runtimeDir };
}

/** Adds permission bits to a path, remembering its mode for `restoreHostModes`. */
export async function addModeBits(path: string, bits: number): Promise<void> {
  const mode = (await stat(path)).mode & 0o7777;
  if ((mode & bits) === bits) return;
  changedModes.push({ path, mode });
  await chmod(path, mode | bits);
}

/** /dev/fuse usable by users, and every directory above this checkout passable, so users can run it. */
export async function openHostToUsers(): Promise<void> {
  await addModeBits("/dev/fuse", 0o666);
  for (let d = REPO_ROOT; d !== "/"; d = dirname(d)) await addModeBits(d, 0o005);
}

/** Puts back every mode `openHostToUsers`/`addModeBits` changed, last first. */
export async function restoreHostModes(): Promise<void> {
  for (const { path, mode } of changedModes.splice(0).reverse()) await chmod(path, mode).catch(() => undefined);
}

/** The environment a login of `u` would have, for processes spawned with its uid/gid. */
export function userEnv(u: TestUser, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: u.home, USER: u.name, LOGNAME: u.name, XDG_RUNTIME_DIR: u.runtimeDir, ...extra };
}

/** Runs `podman ARGS` as `u` (in its rootless namespaces, e.g. `unshare cat /proc/self/mountinfo`). */
export function podmanAsUser(u: TestUser, args: string[], opts: { allowFail?: boolean } = {}) {
  return run("runuser", ["-u", u.name, "--", "env", `XDG_RUNTIME_DIR=${u.runtimeDir}`, `HOME=${u.home}`, "podman", ...args], { cwd: "/", allowFail: opts.allowFail });
}
