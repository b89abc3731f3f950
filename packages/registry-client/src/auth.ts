// Registry auth apart from the HTTP that carries it: what each registry's 401 asked for (Bearer or Basic),
// and the token flow (one request per scope set, cached until shortly before expiry, shared by concurrent
// refusals). A token request is one attempt: its transient failures are the calling request's to retry,
// within that request's budget (Transport.request), so a failing token server is not retried twice over.
import type { Readable } from "node:stream";
import type { Dispatcher } from "undici";
import { readAll, drain } from "./body.js";
import type { Challenge } from "./challenge.js";
import type { Credentials } from "./credentials.js";
import { RegistryError } from "./errors.js";
import { TransientError, isRetryableError, isRetryableStatus, parseRetryAfter } from "./retry.js";
import type { Call, RequestStats } from "./transport.js";

interface Token {
  value: string;
  expiresAt: number;
}

type AuthScheme = { kind: "bearer"; realm: string; service?: string } | { kind: "basic" };
type Bearer = AuthScheme & { kind: "bearer" };

export interface AuthOptions {
  dispatcher: Dispatcher;
  userAgent: string;
  /** the transport's counters: token requests count as requests */
  stats: RequestStats;
  credentials(registry: string, repository?: string): Promise<Credentials | undefined>;
}

// tokens are refreshed this long before they expire, so a request never carries a token that dies in flight
const TOKEN_SKEW_MS = 10_000;

// what docker's token requests carry as client_id (distribution: "registry-client", the docker engine: "docker")
const CLIENT_ID = "lazypull";

type UserPassword = Credentials & { username: string; password: string };
// Basic needs a username and password: an identity token alone cannot be sent as Basic (distribution's
// basicHandler and containers/image send nothing then), so for Basic such credentials are anonymous
const hasPassword = (c: Credentials | undefined): c is UserPassword => c !== undefined && c.username !== undefined && c.password !== undefined;
const basic = (c: UserPassword) => `Basic ${Buffer.from(`${c.username}:${c.password}`).toString("base64")}`;
const who = (c: Credentials | undefined, oauth: boolean) =>
  oauth ? `the identity token${c?.username ? ` of user "${c.username}"` : ""}` : hasPassword(c) ? `user "${c.username}"` : "anonymous access";

export class Auth {
  private readonly schemes = new Map<string, AuthScheme>();
  private readonly tokens = new Map<string, Token>();
  private readonly tokenFlights = new Map<string, Promise<Token>>();

  constructor(private readonly opts: AuthOptions) {}

  /** whether the registry has asked for credentials yet (until then no call to it carries any) */
  knows(registry: string): boolean {
    return this.schemes.has(registry);
  }

  /** The `Authorization` for a call to the registry's own origin, once the registry has asked for one. */
  async authorization(call: Call): Promise<string | undefined> {
    const scheme = this.schemes.get(call.registry);
    if (!scheme) return undefined;
    if (scheme.kind === "basic") {
      const c = await this.opts.credentials(call.registry, call.repository);
      return hasPassword(c) ? basic(c) : undefined;
    }
    const token = await this.token(call, scheme, false);
    return `Bearer ${token.value}`;
  }

  /** Records what a 401 asked for; true when a retry can now succeed. */
  async learnChallenge(call: Call, challenges: Challenge[], sent: string | undefined): Promise<boolean> {
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
      return sent === undefined && hasPassword(await this.opts.credentials(call.registry, call.repository));
    }
    return false;
  }

  private tokenKey(call: Call, scheme: Bearer): string {
    return `${call.registry}\n${scheme.realm}\n${[...call.scopes].sort().join(" ")}`;
  }

  private async token(call: Call, scheme: Bearer, force: boolean): Promise<Token> {
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

  /**
   * One token request. With an identity token it is docker's OAuth2 refresh (distribution's
   * fetchTokenWithOAuth: a form POST to the realm, `grant_type=refresh_token`), otherwise the token GET with
   * Basic credentials, or none. Refusals (401/403) and answers that are wrong for good are final; a retryable
   * status or a dropped connection is a TransientError for the calling request's retry loop, Retry-After included.
   */
  private async fetchToken(call: Call, scheme: Bearer, scopes: string[]): Promise<Token> {
    const url = new URL(scheme.realm);
    const creds = await this.opts.credentials(call.registry, call.repository);
    const ctx = { registry: call.registry, repository: call.repository, digest: call.digest, realm: scheme.realm };
    const headers: Record<string, string> = { "user-agent": this.opts.userAgent, accept: "application/json" };
    const oauth = creds?.identityToken !== undefined && creds.identityToken !== "";
    let body: string | undefined;
    if (oauth) {
      headers["content-type"] = "application/x-www-form-urlencoded";
      body = new URLSearchParams({
        grant_type: "refresh_token",
        refresh_token: creds.identityToken!,
        service: scheme.service ?? "",
        // one field, space-separated, as distribution and the OAuth spec have it (the GET repeats `scope`)
        scope: scopes.join(" "),
        client_id: CLIENT_ID,
      }).toString();
    } else {
      if (scheme.service) url.searchParams.set("service", scheme.service);
      for (const s of scopes) url.searchParams.append("scope", s);
      if (hasPassword(creds)) headers.authorization = basic(creds);
    }
    const stats = this.opts.stats;
    stats.requests++;
    stats.tokenRequests++;
    if (body !== undefined) stats.bytesSent += Buffer.byteLength(body);
    try {
      const res = await this.opts.dispatcher.request({
        origin: url.origin,
        path: url.pathname + url.search,
        method: oauth ? "POST" : "GET",
        headers,
        body,
        signal: call.signal,
      });
      const status = res.statusCode;
      const resBody = res.body as unknown as Readable;
      if (status === 200) {
        const text = (await readAll(resBody, stats, 1 << 20, ctx)).toString("utf8");
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
      if (oauth && status === 400) {
        // RFC 6749 5.2: an expired or revoked refresh token is `invalid_grant`
        const text = (await readAll(resBody, stats, 64 << 10, ctx)).toString("utf8");
        let error: unknown;
        try {
          error = (JSON.parse(text) as { error?: unknown }).error;
        } catch {
          // not OAuth's JSON error: reported as a bad answer below
        }
        if (error === "invalid_grant") {
          throw new RegistryError("REGISTRY_UNAUTHORIZED", `token server ${url.origin} refused ${who(creds, oauth)} (invalid_grant): log in again`, { ...ctx, status });
        }
        throw new RegistryError("REGISTRY_BAD_RESPONSE", `token server ${url.origin} answered HTTP 400${typeof error === "string" ? ` (${error})` : ""} to the identity token exchange`, { ...ctx, status });
      }
      await drain(resBody, stats);
      if (status === 401 || status === 403) {
        throw new RegistryError(
          status === 401 ? "REGISTRY_UNAUTHORIZED" : "REGISTRY_DENIED",
          `token server ${url.origin} refused ${who(creds, oauth)} for ${scopes.join(" ")}`,
          { ...ctx, status },
        );
      }
      if (oauth && status === 404) {
        // distribution's client does not fall back to the GET here (only its spec suggests it), nor does
        // containers/image: the GET could carry no credentials, since an identity token is not Basic
        throw new RegistryError(
          "REGISTRY_BAD_RESPONSE",
          `token server ${url.origin} does not take OAuth2 identity tokens (POST answered HTTP 404): log in with a username and password instead`,
          { ...ctx, status },
        );
      }
      if (isRetryableStatus(status)) {
        throw new TransientError(`token server ${url.origin} answered HTTP ${status}`, {
          status,
          retryAfterMs: parseRetryAfter(res.headers["retry-after"]),
          tokenServer: true,
        });
      }
      throw new RegistryError("REGISTRY_BAD_RESPONSE", `token server ${url.origin} answered HTTP ${status}`, { ...ctx, status });
    } catch (err) {
      // a reset, refusal or timeout on the way to the token server (or while reading its answer)
      if (!(err instanceof TransientError) && !(err instanceof RegistryError) && isRetryableError(err)) {
        throw new TransientError(`token server ${url.origin}: ${(err as Error).message}`, { tokenServer: true, cause: err });
      }
      throw err;
    }
  }
}
