// Who this process runs for. Rootless podman runs containers in a user namespace (and mount namespace)
// of its own, held by its pause process; lazypull enters it with `podman unshare`, where it is uid 0 but
// still acts for the ordinary user: its state and cache belong in that user's directories, and mounts it
// makes must be of the kinds a user namespace allows.
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

/**
 * The host uid this process acts for: inside `podman unshare` (uid 0 in the namespace) the user podman
 * names in `_CONTAINERS_ROOTLESS_UID`; otherwise the real uid.
 */
export function hostUid(env: NodeJS.ProcessEnv = process.env, uid: number = process.getuid?.() ?? 0): number {
  const inner = env._CONTAINERS_ROOTLESS_UID;
  if (uid === 0 && inner !== undefined && /^\d+$/.test(inner) && env._CONTAINERS_USERNS_CONFIGURED) return Number(inner);
  return uid;
}

/** True when lazypull acts for an ordinary user (directly, or inside that user's `podman unshare`). */
export function isRootless(env: NodeJS.ProcessEnv = process.env, uid: number = process.getuid?.() ?? 0): boolean {
  return hostUid(env, uid) !== 0;
}

/** True inside rootless podman's user namespace (`podman unshare`), where mounts are the namespace's. */
export function inRootlessNamespace(env: NodeJS.ProcessEnv = process.env, uid: number = process.getuid?.() ?? 0): boolean {
  return uid === 0 && isRootless(env, uid);
}

/**
 * True when this process is in a user namespace other than the host's: its uid map is not the identity
 * over all ids. The kernel refuses some mount options there (overlayfs' trusted xattrs).
 */
export function inUserNamespace(uidMap: string = readUidMap()): boolean {
  const lines = uidMap.trim().split("\n").map((l) => l.trim().split(/\s+/));
  return !(lines.length === 1 && lines[0]?.[0] === "0" && lines[0]?.[1] === "0" && lines[0]?.[2] === "4294967295");
}

function readUidMap(): string {
  try {
    return readFileSync("/proc/self/uid_map", "utf8");
  } catch {
    return "0 0 4294967295";
  }
}

const XDG_FALLBACK = { XDG_CACHE_HOME: [".cache"], XDG_CONFIG_HOME: [".config"], XDG_DATA_HOME: [".local", "share"] } as const;

/**
 * An XDG base directory of the acting user: the variable when it holds an absolute path (the spec says a
 * relative one is to be ignored), else its default under `$HOME`.
 */
export function xdgDir(name: keyof typeof XDG_FALLBACK, env: NodeJS.ProcessEnv = process.env): string {
  const v = env[name];
  return v && v.startsWith("/") ? v : join(env.HOME || homedir(), ...XDG_FALLBACK[name]);
}

/** `$XDG_RUNTIME_DIR` when it is an absolute path (there is no default: it is the session's). */
export function xdgRuntimeDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const v = env.XDG_RUNTIME_DIR;
  return v && v.startsWith("/") ? v : undefined;
}
