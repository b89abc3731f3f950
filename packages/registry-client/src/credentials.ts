// Credentials: the auth files podman, skopeo and docker write (containers-auth.json(5)), and the per-client
// source that tries the explicit `credentials` option before them, memoised per registry and repository.
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { RegistryError } from "./errors.js";

export interface Credentials {
  username: string;
  password: string;
}

/**
 * The auth files podman, skopeo and docker read, in their order: `REGISTRY_AUTH_FILE`,
 * `$XDG_RUNTIME_DIR/containers/auth.json`, `~/.docker/config.json`.
 */
export function defaultAuthFiles(env: NodeJS.ProcessEnv = process.env): string[] {
  const files: string[] = [];
  if (env.REGISTRY_AUTH_FILE) files.push(env.REGISTRY_AUTH_FILE);
  if (env.XDG_RUNTIME_DIR) files.push(join(env.XDG_RUNTIME_DIR, "containers", "auth.json"));
  files.push(join(env.HOME || homedir(), ".docker", "config.json"));
  return files;
}

// docker.io credentials are stored under several historical keys
function keysFor(registry: string): string[] {
  if (registry === "docker.io") {
    return ["docker.io", "index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/", "https://index.docker.io/v1"];
  }
  return [registry, `https://${registry}`, `http://${registry}`, `https://${registry}/v1/`, `https://${registry}/v2/`];
}

function decodeEntry(file: string, key: string, entry: unknown): Credentials | undefined {
  if (typeof entry !== "object" || entry === null) return undefined;
  const e = entry as { auth?: unknown; username?: unknown; password?: unknown };
  if (typeof e.auth === "string" && e.auth.length > 0) {
    const decoded = Buffer.from(e.auth, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) {
      throw new RegistryError("REGISTRY_AUTH_CONFIG_INVALID", `auth for "${key}" in ${file} is not base64 "user:password"`, {
        registry: key,
        file,
      });
    }
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  if (typeof e.username === "string" && typeof e.password === "string") return { username: e.username, password: e.password };
  return undefined;
}

/**
 * Finds credentials for a registry (and repository, since containers-auth.json(5) allows keys like
 * `registry/namespace`, most specific first) in the given auth files; missing files are skipped.
 */
export async function lookupCredentials(files: string[], registry: string, repository?: string): Promise<Credentials | undefined> {
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch {
      continue;
    }
    let json: { auths?: Record<string, unknown> };
    try {
      json = JSON.parse(text) as typeof json;
    } catch (cause) {
      throw new RegistryError("REGISTRY_AUTH_CONFIG_INVALID", `${file} is not valid JSON`, { registry, file }, { cause });
    }
    const auths = json.auths ?? {};
    const candidates: string[] = [];
    if (repository) {
      const parts = repository.split("/");
      for (let k = parts.length; k > 0; k--) candidates.push(`${registry}/${parts.slice(0, k).join("/")}`);
    }
    candidates.push(...keysFor(registry));
    for (const key of candidates) {
      if (key in auths) {
        const c = decodeEntry(file, key, auths[key]);
        if (c) return c;
      }
    }
  }
  return undefined;
}

/**
 * A client's credentials: `explicit` (a map by registry host, or a function) first, else the auth files;
 * memoised per registry and repository, so the files are read once per client.
 */
export function credentialSource(
  explicit: Record<string, Credentials> | ((registry: string) => Credentials | undefined) | undefined,
  files: () => string[],
): (registry: string, repository?: string) => Promise<Credentials | undefined> {
  const cache = new Map<string, Promise<Credentials | undefined>>();
  return (registry, repository) => {
    const key = `${registry}/${repository ?? ""}`;
    let p = cache.get(key);
    if (!p) {
      const found = typeof explicit === "function" ? explicit(registry) : explicit?.[registry];
      p = found ? Promise.resolve(found) : lookupCredentials(files(), registry, repository);
      cache.set(key, p);
    }
    return p;
  };
}
