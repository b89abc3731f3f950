// Docker credential helpers (github.com/docker/docker-credential-helpers): `docker-credential-NAME get`
// found on PATH, the server URL on stdin, `{"ServerURL","Username","Secret"}` on stdout. The protocol's
// only structured failure is "credentials not found in native keychain" on stdout with a non-zero exit
// (credentials.NewErrCredentialsNotFound; client.Get compares the trimmed stdout to it exactly), which
// means "nothing stored here", not an error. Everything else a helper does wrong is an error, because a
// silently anonymous pull would surface later as a confusing 401.
import { spawn } from "node:child_process";
import { RegistryError } from "./errors.js";

/** What a helper answered; `<token>` as the username marks the secret as an identity token (docker's tokenUsername). */
export type HelperAnswer = { username: string; password: string } | { identityToken: string };

export interface HelperRunOptions {
  /** the helper's environment; its PATH is where `docker-credential-NAME` is looked for (default process.env) */
  env?: NodeJS.ProcessEnv;
  /** how long a helper may take before it is killed with SIGKILL (default 10 s) */
  timeoutMs?: number;
}

/** Where a helper name came from, for messages that say what to fix. */
export interface HelperOrigin {
  /** e.g. `credHelpers["reg.io"]`, `credsStore`, `credential-helpers` */
  setting: string;
  /** the auth file or registries.conf that has the setting, when known */
  file?: string;
}

export const DEFAULT_HELPER_TIMEOUT_MS = 10_000;
const NOT_FOUND = "credentials not found in native keychain";
const TOKEN_USERNAME = "<token>";
// a helper's answer is a few hundred bytes; more is a broken helper, not credentials worth buffering
const MAX_STDOUT = 1 << 20;
const MAX_STDERR_KEPT = 64 << 10;
const MAX_SHOWN = 500;

// the name is appended to `docker-credential-`; a path separator would let a config file run any program
const HELPER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * The server URL docker and containers/image hand a helper: the bare `host[:port]`. For Docker Hub they
 * differ: docker asks for `https://index.docker.io/v1/` (registry.IndexServer), containers/image for
 * `docker.io`; both are tried, the writer's own form first.
 */
export function helperServerUrls(registry: string, dockerFirst: boolean): string[] {
  if (registry !== "docker.io") return [registry];
  return dockerFirst ? ["https://index.docker.io/v1/", "docker.io"] : ["docker.io", "https://index.docker.io/v1/"];
}

const shown = (s: string) => {
  const t = s.trim();
  return t.length > MAX_SHOWN ? `${t.slice(0, MAX_SHOWN)}…` : t;
};

const where = (origin: HelperOrigin) => (origin.file ? `${origin.setting} in ${origin.file}` : origin.setting);

/**
 * Runs `docker-credential-NAME get` for one server URL. Undefined when the helper has nothing stored for it
 * (its "not found" answer, or an empty username and secret); REGISTRY_CREDENTIAL_HELPER_MISSING when the
 * program is not on PATH; REGISTRY_CREDENTIAL_HELPER_FAILED for any other failure.
 */
export function runCredentialHelper(
  name: string,
  serverUrl: string,
  registry: string,
  origin: HelperOrigin,
  opts: HelperRunOptions = {},
): Promise<HelperAnswer | undefined> {
  const program = `docker-credential-${name}`;
  const ctx = { registry, helper: program, file: origin.file, setting: origin.setting };
  if (!HELPER_NAME.test(name)) {
    return Promise.reject(
      // auth files always name themselves; a helper without a file is registries.conf's `credential-helpers`
      new RegistryError(origin.file ? "REGISTRY_AUTH_CONFIG_INVALID" : "REGISTRY_CONFIG_INVALID", `credential helper name ${JSON.stringify(name)} (${where(origin)}) is not a plain program suffix`, ctx),
    );
  }
  const timeoutMs = opts.timeoutMs ?? DEFAULT_HELPER_TIMEOUT_MS;
  const failed = (why: string, stderr: string, cause?: unknown) =>
    new RegistryError(
      "REGISTRY_CREDENTIAL_HELPER_FAILED",
      `credential helper ${program} (${where(origin)}) ${why} for ${serverUrl}${stderr.trim() ? `: ${shown(stderr)}` : ""}`,
      ctx,
      cause === undefined ? undefined : { cause },
    );

  return new Promise((resolve, reject) => {
    const child = spawn(program, ["get"], { env: opts.env ?? process.env, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    let outBytes = 0;
    let err = "";
    let settled = false;
    const finish = (e: RegistryError | undefined, v?: HelperAnswer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (e) reject(e);
      else resolve(v);
    };
    // answered at once, not on "close": a grandchild the helper left behind may hold its pipes open
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      child.stdout.destroy();
      child.stderr.destroy();
      finish(failed(`gave no answer within ${timeoutMs} ms and was killed`, err));
    }, timeoutMs);
    child.stdout.on("data", (b: Buffer) => {
      outBytes += b.length;
      if (outBytes > MAX_STDOUT) {
        child.kill("SIGKILL");
        child.stdout.destroy();
        child.stderr.destroy();
        finish(failed(`wrote more than ${MAX_STDOUT} bytes`, err));
        return;
      }
      out.push(b);
    });
    child.stderr.on("data", (b: Buffer) => {
      if (err.length < MAX_STDERR_KEPT) err += b.toString("utf8");
    });
    // a helper that exits without reading its stdin makes the write fail with EPIPE; its exit says what happened
    child.stdin.on("error", () => {});
    child.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT") {
        finish(
          new RegistryError(
            "REGISTRY_CREDENTIAL_HELPER_MISSING",
            `credential helper ${program} (${where(origin)}) is not on PATH: install it, or remove that setting to use the auth file's own entries`,
            ctx,
            { cause: e },
          ),
        );
      } else {
        finish(failed(`could not be started (${e.code ?? e.message})`, "", e));
      }
    });
    child.on("close", (code, signal) => {
      const stdout = Buffer.concat(out).toString("utf8");
      if (code !== 0) {
        if (stdout.trim() === NOT_FOUND) return finish(undefined, undefined);
        // docker-credential-helpers print their errors on stdout, other helpers on stderr: show both
        const said = [stdout, err].map((s) => s.trim()).filter(Boolean).join(" / ");
        return finish(failed(signal ? `was killed by ${signal}` : `exited with status ${code}`, said));
      }
      let json: unknown;
      try {
        json = JSON.parse(stdout);
      } catch (cause) {
        return finish(failed("answered with something that is not JSON", err, cause));
      }
      const j = typeof json === "object" && json !== null && !Array.isArray(json) ? (json as Record<string, unknown>) : undefined;
      const username = j ? (j.Username ?? "") : undefined;
      const secret = j ? (j.Secret ?? "") : undefined;
      if (typeof username !== "string" || typeof secret !== "string") {
        return finish(failed('answered JSON without string "Username" and "Secret"', err));
      }
      if (!username && !secret) return finish(undefined, undefined);
      finish(undefined, username === TOKEN_USERNAME ? { identityToken: secret } : { username, password: secret });
    });
    child.stdin.end(serverUrl);
  });
}

/**
 * A client's helper calls, memoised by helper and server URL: a helper may prompt, unlock a keychain or
 * call a cloud API, so it runs once per client however many repositories ask.
 */
export class CredentialHelperRunner {
  private readonly cache = new Map<string, Promise<HelperAnswer | undefined>>();

  constructor(private readonly opts: HelperRunOptions = {}) {}

  /** The first server URL form the helper has credentials for (see `helperServerUrls`). */
  async get(name: string, registry: string, origin: HelperOrigin, dockerFirst: boolean): Promise<HelperAnswer | undefined> {
    for (const url of helperServerUrls(registry, dockerFirst)) {
      const key = `${name}\n${url}`;
      let p = this.cache.get(key);
      if (!p) {
        p = runCredentialHelper(name, url, registry, origin, this.opts);
        this.cache.set(key, p);
        // a helper that failed (timed out, keychain locked) is run again for the next request
        p.catch(() => this.cache.delete(key));
      }
      const answer = await p;
      if (answer) return answer;
    }
    return undefined;
  }
}
