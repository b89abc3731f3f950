import { delay } from "@lazypull/host";
import type { IncomingHttpHeaders } from "node:http";
import { Readable } from "node:stream";
import type { Dispatcher } from "undici";
import { drain, readAll, type ByteCounter } from "./body.js";
import { parseWwwAuthenticate, type Challenge } from "./challenge.js";
import type { Credentials } from "./credentials.js";
import { RegistryError, type RegistryErrorContext } from "./errors.js";
import { backoffMs, isRetryableError, isRetryableStatus, parseRetryAfter, type RetryPolicy } from "./retry.js";

export interface RequestStats extends ByteCounter {
  /** HTTP requests sent (retries, redirects and token requests included) */
  requests: number;
  bytesSent: number;
  retries: number;
  redirects: number;
  tokenRequests: number;
}

/** A body that can be sent again on retry (Buffer or factory), or once (a stream). */
export type RequestBody = Buffer | Uint8Array | string | (() => Readable) | Readable;

export interface Call {
  method: "GET" | "HEAD" | "PUT" | "POST" | "PATCH" | "DELETE";
  registry: string;
  repository?: string;
  digest?: string;
  /** path and query on the registry (`/v2/…`) or an absolute URL (upload locations) */
  path: string;
  headers?: Record<string, string>;
  body?: RequestBody;
  /** token scopes this call needs, e.g. `repository:library/debian:pull` */
  scopes: string[];
  signal?: AbortSignal;
  /** off for non-idempotent calls that must not be repeated (PATCH) */
  retry?: boolean;
}

export interface Response {
  status: number;
  headers: IncomingHttpHeaders;
  body: Readable;
  /** the URL that answered (after redirects) */
  url: URL;
}

interface Token {
  value: string;
  expiresAt: number;
}

type AuthScheme = { kind: "bearer"; realm: string; service?: string } | { kind: "basic" };

export interface TransportOptions {
  dispatcher: Dispatcher;
  retry: RetryPolicy;
  userAgent: string;
  /** `https:` or `http:` for a registry */
  baseUrl(registry: string): Promise<string>;
  credentials(registry: string, repository?: string): Promise<Credentials | undefined>;
}

const MAX_REDIRECTS = 5;
// tokens are refreshed this long before they expire, so a request never carries a token that dies in flight
const TOKEN_SKEW_MS = 10_000;

export function header(h: IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * HTTP to registries: authentication (Bearer token flow and Basic), redirects that never carry the
 * registry's credentials to another host, retries with jittered backoff, and request counters.
 * Statuses other than 401, redirects and retryable failures are handed to the caller's `consume`.
 */
export class Transport {
  readonly stats: RequestStats = { requests: 0, bytesReceived: 0, bytesSent: 0, retries: 0, redirects: 0, tokenRequests: 0 };
  private readonly schemes = new Map<string, AuthScheme>();
  private readonly tokens = new Map<string, Token>();
  private readonly tokenFlights = new Map<string, Promise<Token>>();
  private readonly bases = new Map<string, string>();

  constructor(private readonly opts: TransportOptions) {}

  /** Sends a call and hands the response to `consume`; network failures inside `consume` are retried too. */
  async request<T>(call: Call, consume: (res: Response) => Promise<T>): Promise<T> {
    const policy = this.opts.retry;
    const started = Date.now();
    const ctx: RegistryErrorContext = { registry: call.registry, repository: call.repository, digest: call.digest };
    const canRetry = call.retry !== false && !(call.body instanceof Readable);
    let attempt = 0;
    let authRefreshed = false;
    let lastFailure: unknown;
    let lastStatus: number | undefined;
    for (;;) {
      attempt++;
      call.signal?.throwIfAborted();
      let wait: number | undefined;
      try {
        const res = await this.sendFollowing(call);
        if (res.status === 401) {
          const challenges = parseWwwAuthenticate(res.headers["www-authenticate"]);
          await drain(res.body, this.stats);
          if (!authRefreshed && (await this.learnChallenge(call, challenges, res.sentAuthorization))) {
            authRefreshed = true;
            attempt--; // an auth round trip is not a failure
            continue;
          }
          throw new RegistryError("REGISTRY_UNAUTHORIZED", `${call.registry} refused the credentials for ${call.method} ${call.path}`, {
            ...ctx,
            status: 401,
            challenge: challenges[0]?.params,
          });
        }
        if (isRetryableStatus(res.status)) {
          lastStatus = res.status;
          lastFailure = undefined;
          wait = parseRetryAfter(res.headers["retry-after"]);
          await drain(res.body, this.stats);
        } else {
          return await consume(res);
        }
      } catch (err) {
        if (call.signal?.aborted || !isRetryableError(err)) throw err;
        lastFailure = err;
        lastStatus = undefined;
      }
      // a retryable failure: wait and go again, within the attempt and time budget
      const pause = Math.min(policy.maxDelayMs, wait ?? backoffMs(policy, attempt));
      const tooLate = Date.now() + pause - started > policy.maxTotalMs;
      if (!canRetry || attempt >= policy.maxAttempts || tooLate) {
        const what = lastStatus ? `HTTP ${lastStatus}` : String((lastFailure as Error)?.message ?? lastFailure);
        throw new RegistryError(
          "REGISTRY_UNAVAILABLE",
          `${call.method} ${call.path} on ${call.registry} failed after ${attempt} attempt(s): ${what}`,
          { ...ctx, status: lastStatus, attempts: attempt },
          { cause: lastFailure },
        );
      }
      this.stats.retries++;
      await delay(pause, call.signal);
    }
  }

  /** Sends one call, following redirects; a 403 from a redirect target (expired URL) re-resolves once. */
  private async sendFollowing(call: Call): Promise<Response & { sentAuthorization?: string }> {
    const base = await this.base(call.registry);
    const origin = new URL(base);
    let url = new URL(call.path, base);
    let reResolved = false;
    let hops = 0;
    for (;;) {
      // the registry's credentials go to the registry's own origin and nowhere else
      const sameOrigin = url.host === origin.host;
      const auth = sameOrigin ? await this.authorization(call) : undefined;
      const res: Response & { sentAuthorization?: string } = await this.send(call, url, auth);
      res.sentAuthorization = auth;
      if (res.status >= 300 && res.status < 400 && res.status !== 304 && res.headers.location) {
        await drain(res.body, this.stats);
        if (++hops > MAX_REDIRECTS) {
          throw new RegistryError("REGISTRY_BAD_RESPONSE", `more than ${MAX_REDIRECTS} redirects for ${call.path}`, {
            registry: call.registry,
            repository: call.repository,
            digest: call.digest,
          });
        }
        this.stats.redirects++;
        url = new URL(header(res.headers, "location")!, url);
        continue;
      }
      if (res.status === 403 && url.host !== origin.host && !reResolved) {
        // pre-signed storage URLs expire; ask the registry for a fresh one, once
        await drain(res.body, this.stats);
        reResolved = true;
        url = new URL(call.path, base);
        continue;
      }
      return res;
    }
  }

  private async send(call: Call, url: URL, authorization: string | undefined): Promise<Response> {
    const headers: Record<string, string> = { "user-agent": this.opts.userAgent, ...call.headers };
    if (authorization) headers.authorization = authorization;
    let body: Buffer | Uint8Array | string | Readable | undefined;
    const b = call.body;
    if (typeof b === "function") body = b();
    else body = b;
    if (body !== undefined && !(body instanceof Readable)) {
      const n = typeof body === "string" ? Buffer.byteLength(body) : body.byteLength;
      this.stats.bytesSent += n;
    }
    this.stats.requests++;
    const res = await this.opts.dispatcher.request({
      origin: url.origin,
      path: url.pathname + url.search,
      method: call.method,
      headers,
      body: body ?? null,
      signal: call.signal,
    });
    return { status: res.statusCode, headers: res.headers as IncomingHttpHeaders, body: res.body as unknown as Readable, url };
  }

  /** The registry's base URL (`https://host` or `http://host`), memoised. */
  async base(registry: string): Promise<string> {
    let b = this.bases.get(registry);
    if (!b) {
      b = await this.opts.baseUrl(registry);
      this.bases.set(registry, b);
    }
    return b;
  }

  private async authorization(call: Call): Promise<string | undefined> {
    const scheme = this.schemes.get(call.registry);
    if (!scheme) return undefined;
    if (scheme.kind === "basic") {
      const c = await this.opts.credentials(call.registry, call.repository);
      return c ? `Basic ${Buffer.from(`${c.username}:${c.password}`).toString("base64")}` : undefined;
    }
    const token = await this.token(call, scheme, false);
    return `Bearer ${token.value}`;
  }

  /** Records what a 401 asked for; true when a retry can now succeed. */
  private async learnChallenge(call: Call, challenges: Challenge[], sent: string | undefined): Promise<boolean> {
    const bearer = challenges.find((c) => c.scheme === "bearer" && c.params.realm);
    if (bearer) {
      const scheme: AuthScheme = { kind: "bearer", realm: bearer.params.realm!, service: bearer.params.service };
      this.schemes.set(call.registry, scheme);
      // refetch only when the refused token is still the cached one: concurrent calls refused together
      // share one refresh, and a call that sent nothing picks up what another call just fetched
      const cached = this.tokens.get(this.tokenKey(call, scheme));
      const force = sent !== undefined && (cached === undefined || sent === `Bearer ${cached.value}`);
      await this.token(call, scheme, force);
      return true;
    }
    if (challenges.some((c) => c.scheme === "basic")) {
      this.schemes.set(call.registry, { kind: "basic" });
      // worth a retry when we have credentials and did not send them this time
      return sent === undefined && (await this.opts.credentials(call.registry, call.repository)) !== undefined;
    }
    return false;
  }

  private tokenKey(call: Call, scheme: AuthScheme & { kind: "bearer" }): string {
    return `${call.registry}\n${scheme.realm}\n${[...call.scopes].sort().join(" ")}`;
  }

  private async token(call: Call, scheme: AuthScheme & { kind: "bearer" }, force: boolean): Promise<Token> {
    const scopes = [...call.scopes].sort();
    const key = this.tokenKey(call, scheme);
    const cached = force ? undefined : (this.tokens.get(key) ?? this.coveringToken(call.registry, scheme.realm, scopes));
    if (cached && cached.expiresAt > Date.now()) return cached;
    let flight = this.tokenFlights.get(key);
    if (!flight) {
      flight = this.fetchToken(call, scheme, scopes).finally(() => this.tokenFlights.delete(key));
      this.tokenFlights.set(key, flight);
    }
    const t = await flight;
    this.tokens.set(key, t);
    return t;
  }

  /** A live cached token whose scopes include every action asked for (a push token serves pulls). */
  private coveringToken(registry: string, realm: string, scopes: string[]): Token | undefined {
    const prefix = `${registry}\n${realm}\n`;
    const now = Date.now();
    for (const [key, t] of this.tokens) {
      if (!key.startsWith(prefix) || t.expiresAt <= now) continue;
      const have = new Map<string, Set<string>>();
      for (const s of key.slice(prefix.length).split(" ")) {
        const i = s.lastIndexOf(":");
        have.set(s.slice(0, i), new Set(s.slice(i + 1).split(",")));
      }
      const covers = scopes.every((s) => {
        const i = s.lastIndexOf(":");
        const acts = have.get(s.slice(0, i));
        return acts !== undefined && s.slice(i + 1).split(",").every((a) => acts.has(a));
      });
      if (covers) return t;
    }
    return undefined;
  }

  private async fetchToken(call: Call, scheme: AuthScheme & { kind: "bearer" }, scopes: string[]): Promise<Token> {
    const url = new URL(scheme.realm);
    if (scheme.service) url.searchParams.set("service", scheme.service);
    for (const s of scopes) url.searchParams.append("scope", s);
    const creds = await this.opts.credentials(call.registry, call.repository);
    const ctx = { registry: call.registry, repository: call.repository, digest: call.digest, realm: scheme.realm };
    const headers: Record<string, string> = { "user-agent": this.opts.userAgent, accept: "application/json" };
    if (creds) headers.authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString("base64")}`;
    const policy = this.opts.retry;
    for (let attempt = 1; ; attempt++) {
      this.stats.requests++;
      this.stats.tokenRequests++;
      try {
        const res = await this.opts.dispatcher.request({
          origin: url.origin,
          path: url.pathname + url.search,
          method: "GET",
          headers,
          signal: call.signal,
        });
        const status = res.statusCode;
        const body = res.body as unknown as Readable;
        if (status === 200) {
          const text = (await readAll(body, this.stats, 1 << 20, ctx)).toString("utf8");
          let json: { token?: string; access_token?: string; expires_in?: number; issued_at?: string };
          try {
            json = JSON.parse(text) as typeof json;
          } catch (cause) {
            throw new RegistryError("REGISTRY_BAD_RESPONSE", `token server ${url.origin} sent invalid JSON`, ctx, { cause });
          }
          const value = json.token ?? json.access_token;
          if (!value) throw new RegistryError("REGISTRY_BAD_RESPONSE", `token server ${url.origin} sent no token`, ctx);
          // the spec's default lifetime is 60 s
          const lifetimeMs = (typeof json.expires_in === "number" && json.expires_in > 0 ? json.expires_in : 60) * 1000;
          const issued = json.issued_at ? Date.parse(json.issued_at) : NaN;
          const from = Number.isNaN(issued) ? Date.now() : Math.min(issued, Date.now());
          return { value, expiresAt: from + lifetimeMs - Math.min(TOKEN_SKEW_MS, lifetimeMs / 2) };
        }
        await drain(body, this.stats);
        if (status === 401 || status === 403) {
          throw new RegistryError(
            status === 401 ? "REGISTRY_UNAUTHORIZED" : "REGISTRY_DENIED",
            `token server ${url.origin} refused ${creds ? `user "${creds.username}"` : "anonymous access"} for ${scopes.join(" ")}`,
            { ...ctx, status },
          );
        }
        if (!isRetryableStatus(status) || attempt >= policy.maxAttempts) {
          throw new RegistryError("REGISTRY_BAD_RESPONSE", `token server ${url.origin} answered HTTP ${status}`, { ...ctx, status });
        }
      } catch (err) {
        if (call.signal?.aborted || !isRetryableError(err) || attempt >= policy.maxAttempts) throw err;
      }
      this.stats.retries++;
      await delay(backoffMs(policy, attempt), call.signal);
    }
  }
}

/** Turns a registry's error response into a RegistryError with the right code. */
export async function errorFor(res: Response, counter: ByteCounter, ctx: RegistryErrorContext, what: string): Promise<RegistryError> {
  let registryErrors: string[] | undefined;
  let detail = "";
  try {
    const text = (await readAll(res.body, counter, 1 << 16, ctx)).toString("utf8");
    const json = JSON.parse(text) as { errors?: { code?: string; message?: string }[] };
    registryErrors = json.errors?.map((e) => e.code ?? "UNKNOWN");
    detail = json.errors?.map((e) => `${e.code}: ${e.message}`).join("; ") ?? "";
  } catch {
    // not every registry (or front) sends a JSON error body
  }
  const c = { ...ctx, status: res.status, registryErrors };
  const msg = `${what}: HTTP ${res.status}${detail ? ` (${detail})` : ""}`;
  switch (res.status) {
    case 401:
      return new RegistryError("REGISTRY_UNAUTHORIZED", msg, c);
    case 403:
      return new RegistryError("REGISTRY_DENIED", msg, c);
    case 404:
      return new RegistryError("REGISTRY_NOT_FOUND", msg, c);
    case 416:
      return new RegistryError("REGISTRY_RANGE_NOT_SATISFIABLE", msg, c);
    default:
      return new RegistryError("REGISTRY_BAD_RESPONSE", msg, c);
  }
}
