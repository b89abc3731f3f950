// Credentials as podman (containers/image pkg/docker/config) and docker find them: the auth files
// (containers-auth.json(5), docker's config.json) with their `auths`, `credHelpers` and `credsStore`,
// registries.conf's `credential-helpers` list around them, and the per-client source that tries the
// explicit `credentials` option first and memoises per registry and repository.
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { CredentialHelperRunner } from "./cred-helpers.js";
import { RegistryError } from "./errors.js";

/**
 * A username and password (Basic, and the token server's GET), or an identity token: an OAuth2 refresh
 * token (`identitytoken` in an auth file, or a helper's `<token>` username) exchanged at the token server
 * by POST. `docker login` to a registry that hands out identity tokens stores both the username and the
 * token; the username is then only a name for messages.
 */
export type Credentials =
  | { username: string; password: string; identityToken?: string }
  | { identityToken: string; username?: string; password?: undefined };

/** The entry of registries.conf's `credential-helpers` that stands for the auth files. */
export const AUTH_FILES_HELPER = "containers-auth.json";

export interface CredentialLookupOptions {
  /**
   * registries.conf's `credential-helpers`, in order: `containers-auth.json` is the auth files, any other
   * NAME is `docker-credential-NAME` (default: `["containers-auth.json"]`; an empty list means the same).
   * A function is called at each lookup, so a registries.conf that is read lazily can supply it.
   */
  helpers?: string[] | (() => string[] | Promise<string[]>);
  /** environment of credential helpers; its PATH is where they are looked for (default process.env) */
  env?: NodeJS.ProcessEnv;
  /** how long a credential helper may take before it is killed (default 10 s) */
  helperTimeoutMs?: number;
}

/**
 * The auth files podman, skopeo and docker read, in their order: `REGISTRY_AUTH_FILE`, the runtime
 * one (`$XDG_RUNTIME_DIR/containers/auth.json`, or `/run/containers/$UID/auth.json` where that variable
 * is unset, as for root under sudo or a service: where `podman login` writes then),
 * `$XDG_CONFIG_HOME/containers/auth.json` (default `~/.config`), then docker's
 * `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`).
 */
export function defaultAuthFiles(env: NodeJS.ProcessEnv = process.env, uid: number | undefined = process.getuid?.()): string[] {
  const files: string[] = [];
  const home = env.HOME || homedir();
  if (env.REGISTRY_AUTH_FILE) files.push(env.REGISTRY_AUTH_FILE);
  if (env.XDG_RUNTIME_DIR) files.push(join(env.XDG_RUNTIME_DIR, "containers", "auth.json"));
  else if (uid !== undefined) files.push(join("/run/containers", String(uid), "auth.json"));
  files.push(join(env.XDG_CONFIG_HOME || join(home, ".config"), "containers", "auth.json"));
  files.push(env.DOCKER_CONFIG ? join(env.DOCKER_CONFIG, "config.json") : join(home, ".docker", "config.json"));
  return files;
}

const DOCKER_HUB_KEYS = ["docker.io", "index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/", "https://index.docker.io/v1"];

// docker.io credentials are stored under several historical keys
function keysFor(registry: string): string[] {
  if (registry === "docker.io") return DOCKER_HUB_KEYS;
  return [registry, `https://${registry}`, `http://${registry}`, `https://${registry}/v1/`, `https://${registry}/v2/`];
}

// containers/image looks `credHelpers` up by the bare registry only ("docker.io" for Docker Hub); docker
// by its auth config key, which for Docker Hub is https://index.docker.io/v1/
const helperKeysFor = (registry: string) => (registry === "docker.io" ? DOCKER_HUB_KEYS : [registry]);

function decodeEntry(file: string, key: string, entry: unknown): Credentials | undefined {
  if (typeof entry !== "object" || entry === null) return undefined;
  const e = entry as { auth?: unknown; username?: unknown; password?: unknown; identitytoken?: unknown };
  const identityToken = typeof e.identitytoken === "string" && e.identitytoken.length > 0 ? e.identitytoken : undefined;
  let user: { username: string; password: string } | undefined;
  if (typeof e.auth === "string" && e.auth.length > 0) {
    const decoded = Buffer.from(e.auth, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) {
      throw new RegistryError("REGISTRY_AUTH_CONFIG_INVALID", `auth for "${key}" in ${file} is not base64 "user:password"`, {
        registry: key,
        file,
      });
    }
    user = { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  } else if (typeof e.username === "string" && typeof e.password === "string") {
    user = { username: e.username, password: e.password };
  }
  // docker login keeps "user:" (no password) beside the identity token it got
  if (identityToken) return user?.password ? { ...user, identityToken } : { identityToken, ...(user?.username ? { username: user.username } : {}) };
  return user;
}

interface AuthFile {
  auths?: Record<string, unknown>;
  credHelpers?: Record<string, unknown>;
  credsStore?: unknown;
}

/**
 * One auth file's answer, in containers/image's order (findCredentialsInFile): a `credHelpers` entry for
 * the registry decides alone (its helper's "not found" moves on to the next file, not to this file's
 * `auths`); else `auths`, most specific key first. containers/image never reads `credsStore`; docker
 * consults it instead of `auths`. Here it comes after `auths`: docker writes empty `auths` entries beside
 * a store (those do not count), and a file with real `auths` entries gets what podman would use.
 */
async function fromAuthFile(
  runner: CredentialHelperRunner,
  file: string,
  registry: string,
  repository: string | undefined,
): Promise<Credentials | undefined> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    return undefined;
  }
  let json: AuthFile;
  try {
    json = JSON.parse(text) as AuthFile;
  } catch (cause) {
    throw new RegistryError("REGISTRY_AUTH_CONFIG_INVALID", `${file} is not valid JSON`, { registry, file }, { cause });
  }
  if (typeof json !== "object" || json === null) return undefined;

  const helpers = typeof json.credHelpers === "object" && json.credHelpers !== null ? json.credHelpers : {};
  for (const key of helperKeysFor(registry)) {
    const name = helpers[key];
    if (typeof name === "string" && name) return await runner.get(name, registry, { setting: `credHelpers[${JSON.stringify(key)}]`, file }, true);
  }

  const auths = typeof json.auths === "object" && json.auths !== null ? json.auths : {};
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

  if (typeof json.credsStore === "string" && json.credsStore) return await runner.get(json.credsStore, registry, { setting: "credsStore", file }, true);
  return undefined;
}

/** The auth files in order; the first file's error ends the search, as in containers/image. */
async function fromAuthFiles(runner: CredentialHelperRunner, files: string[], registry: string, repository: string | undefined): Promise<Credentials | undefined> {
  for (const file of files) {
    const c = await fromAuthFile(runner, file, registry, repository);
    if (c) return c;
  }
  return undefined;
}

async function lookupWith(
  runner: CredentialHelperRunner,
  files: string[],
  registry: string,
  repository: string | undefined,
  helpersOpt: CredentialLookupOptions["helpers"],
): Promise<Credentials | undefined> {
  const helpers = typeof helpersOpt === "function" ? await helpersOpt() : helpersOpt;
  // containers/image getCredentialsWithHomeDir: each source in turn; one that fails is skipped, and its
  // error is reported only when no later source has credentials
  const errors: unknown[] = [];
  for (const helper of helpers?.length ? helpers : [AUTH_FILES_HELPER]) {
    try {
      const c =
        helper === AUTH_FILES_HELPER
          ? await fromAuthFiles(runner, files, registry, repository)
          : // containers/image asks external helpers for the registry only: no namespaced credentials there
            await runner.get(helper, registry, { setting: `credential-helpers entry "${helper}" in registries.conf` }, false);
      if (c) return c;
    } catch (err) {
      errors.push(err);
    }
  }
  if (errors.length > 0) throw errors[0];
  return undefined;
}

/**
 * Finds credentials for a registry (and repository, since containers-auth.json(5) allows keys like
 * `registry/namespace`, most specific first): registries.conf's `credential-helpers` in order, the auth
 * files standing for `containers-auth.json`; missing files are skipped.
 */
export async function lookupCredentials(
  files: string[],
  registry: string,
  repository?: string,
  opts: CredentialLookupOptions = {},
): Promise<Credentials | undefined> {
  const runner = new CredentialHelperRunner({ env: opts.env, timeoutMs: opts.helperTimeoutMs });
  return lookupWith(runner, files, registry, repository, opts.helpers);
}

/**
 * A client's credentials: `explicit` (a map by registry host, or a function) first, else the lookup above;
 * memoised per registry and repository, so the files are read once per client, and each credential helper
 * runs once per client and server URL.
 */
export function credentialSource(
  explicit: Record<string, Credentials> | ((registry: string) => Credentials | undefined) | undefined,
  files: () => string[],
  opts: CredentialLookupOptions = {},
): (registry: string, repository?: string) => Promise<Credentials | undefined> {
  const cache = new Map<string, Promise<Credentials | undefined>>();
  const runner = new CredentialHelperRunner({ env: opts.env, timeoutMs: opts.helperTimeoutMs });
  return (registry, repository) => {
    const key = `${registry}/${repository ?? ""}`;
    let p = cache.get(key);
    if (!p) {
      const found = typeof explicit === "function" ? explicit(registry) : explicit?.[registry];
      p = found ? Promise.resolve(found) : lookupWith(runner, files(), registry, repository, opts.helpers);
      cache.set(key, p);
      // a failure (a helper that timed out, a file being rewritten) is asked again next time, not for the
      // client's life: lazypulld keeps one client for weeks
      p.catch(() => cache.delete(key));
    }
    return p;
  };
}
