// HTTP to registries, and the one retry loop: every call (and the token requests made for it) is retried
// within one budget of attempts and time, redirects are followed without the registry's credentials, and
// 401s are answered through auth.ts. Protocol steps (manifests.ts, blobs.ts, ranges.ts, push.ts, tags.ts)
// build Calls and read the responses they are handed.
import { delay } from "@lazypull/host";
import type { IncomingHttpHeaders } from "node:http";
import { Readable } from "node:stream";
import type { SchemeMemo } from "./scheme-memo.js";
import type { Dispatcher } from "undici";
import { Auth } from "./auth.js";
import { drain, readAll, type ByteCounter } from "./body.js";
import { parseWwwAuthenticate } from "./challenge.js";
import type { Credentials } from "./credentials.js";
import { hostOf, retarget, type Endpoints, type SchemePolicy } from "./endpoint.js";
import { RegistryError, type RegistryErrorContext } from "./errors.js";
import { speaksPlainHttp, tlsErrorFor } from "./tls-errors.js";
import { TransientError, backoffMs, isRetryableError, isRetryableStatus, parseRetryAfter, type RetryPolicy } from "./retry.js";

export interface RequestStats extends ByteCounter {
  /** HTTP requests sent (retries, redirects and token requests included) */
  requests: number;
  bytesSent: number;
  retries: number;
  redirects: number;
  tokenRequests: number;
  /** calls a mirror failed and the next source (another mirror, or the registry) answered instead */
  mirrorFallbacks: number;
  /** requests and body bytes per host that answered (`host[:port]`), so a run can say who served it */
  hosts: Record<string, HostStats>;
}

export interface HostStats {
  requests: number;
  bytesReceived: number;
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
  /** counts this body's bytes for the client and for the host that sent them: pass it to body.ts's readers */
  counter: ByteCounter;
}

export interface TransportOptions {
  dispatcher: Dispatcher;
  retry: RetryPolicy;
  userAgent: string;
  /** mirrors, rewrites and schemes (registries.conf, insecure registries, --tls-verify) */
  endpoints: Endpoints;
  credentials(registry: string, repository?: string): Promise<Credentials | undefined>;
  /** which hosts answered in plain HTTP in earlier processes (see scheme-memo.ts) */
  schemeMemo?: SchemeMemo;
  /** opens a plain-TCP connection to host[:port] ahead, for the plain-HTTP attempt that may follow HTTPS */
  preconnectPlain?: (host: string) => void;
}

/**
 * A mirror gets fewer attempts than the registry behind it: a failing mirror should cost a start little,
 * since the registry can still answer.
 */
const MIRROR_RETRY: Partial<RetryPolicy> = { maxAttempts: 2, maxTotalMs: 5_000 };
/** blobs whose per-host byte counts are kept (`bytesByHost`) */
const MAX_BLOB_HOSTS = 10_000;
/** a mirror that could not be reached is skipped for this long, so each range does not pay for it again */
const MIRROR_DOWN_MS = 30_000;

/** One failed attempt, as the retry loop weighs it. */
interface Failure {
  status?: number;
  retryAfterMs?: number;
  /** the error, when it was not a plain retryable status */
  cause?: unknown;
  what: string;
  /** the registry did not act on the call (a token server failed), so even a call that is not retried may go again */
  callUntouched: boolean;
}

const MAX_REDIRECTS = 5;

export function header(h: IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * HTTP to registries: authentication (Bearer token flow and Basic, in auth.ts), redirects that never carry the
 * registry's credentials to another host, retries with jittered backoff, and request counters.
 * Statuses other than 401, redirects and retryable failures are handed to the caller's `consume`.
 */
export class Transport {
  readonly stats: RequestStats = { requests: 0, bytesReceived: 0, bytesSent: 0, retries: 0, redirects: 0, tokenRequests: 0, mirrorFallbacks: 0, hosts: {} };
  private readonly auth: Auth;
  /** plain-HTTP attempts sent alongside a first HTTPS one (see mayAskPlainEarly): not counted unless adopted */
  private readonly probes = new WeakSet<Call>();
  /** the scheme each host answered on (`https:` or `http:`), once known */
  private readonly schemes = new Map<string, "https:" | "http:">();
  /** mirrors that could not be reached, until when they are skipped */
  private readonly mirrorDownUntil = new Map<string, number>();
  /** response bytes per blob digest and host: which mirror or registry served a layer */
  private readonly blobHosts = new Map<string, Record<string, number>>();
  /** the mirror that last answered a call for a digest (none when the registry did) */
  private readonly mirrorFor = new Map<string, string>();

  constructor(private readonly opts: TransportOptions) {
    this.auth = new Auth({ dispatcher: opts.dispatcher, userAgent: opts.userAgent, stats: this.stats, credentials: (registry, repository) => opts.credentials(registry, repository) });
  }

  /** The retry policy every call runs under. */
  get retry(): RetryPolicy {
    return this.opts.retry;
  }

  /**
   * Sends a call and hands the response to `consume`. Retried within one budget (`maxAttempts` attempts, waits
   * that end within `maxTotalMs` of the first): resets, refusals and timeouts (also while `consume` reads the
   * body), retryable statuses (Retry-After honoured up to `maxDelayMs`), bodies cut short (a TransientError from
   * `consume`), and the token requests made for the call, which spend the same attempts.
   */
  async request<T>(call: Call, consume: (res: Response) => Promise<T>): Promise<T> {
    const sources = await this.opts.endpoints.sources(call);
    for (let i = 0; ; i++) {
      const source = sources[i]!;
      const last = i === sources.length - 1;
      if (!last && (this.mirrorDownUntil.get(source.registry) ?? 0) > Date.now()) continue;
      const target = retarget(call, source);
      if (last) {
        const res = await this.requestAt(target, consume, this.opts.retry);
        if (call.digest) this.mirrorFor.delete(call.digest);
        return res;
      }
      try {
        const res = await this.requestAt(target, consume, { ...this.opts.retry, ...MIRROR_RETRY });
        if (call.digest) {
          if (this.mirrorFor.size >= MAX_BLOB_HOSTS) this.mirrorFor.delete(this.mirrorFor.keys().next().value!);
          this.mirrorFor.set(call.digest, source.registry);
        }
        return res;
      } catch (err) {
        // any failure of a mirror (down, 404 for a blob it lacks, a refusal) leaves the next source to answer
        if (call.signal?.aborted) throw err;
        if (isUnreachable(err)) this.mirrorDownUntil.set(source.registry, Date.now() + MIRROR_DOWN_MS);
        this.stats.mirrorFallbacks++;
      }
    }
  }

  /** One source's retry loop (see `request`). */
  private async requestAt<T>(call: Call, consume: (res: Response) => Promise<T>, policy: RetryPolicy): Promise<T> {
    const started = Date.now();
    const ctx: RegistryErrorContext = { registry: call.registry, repository: call.repository, digest: call.digest };
    const stream = call.body instanceof Readable;
    const canRetry = call.retry !== false && !stream;
    const sent = { stream: false };
    let attempt = 0;
    let authRefreshed = false;
    for (;;) {
      attempt++;
      call.signal?.throwIfAborted();
      let failure: Failure;
      try {
        const res = await this.sendFollowing(call, sent);
        if (res.status === 401) {
          const challenges = parseWwwAuthenticate(res.headers["www-authenticate"]);
          await drain(res.body, res.counter);
          if (!authRefreshed && (await this.auth.learnChallenge(call, challenges, res.sentAuthorization))) {
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
        if (!isRetryableStatus(res.status)) return await consume(res);
        failure = { status: res.status, retryAfterMs: parseRetryAfter(res.headers["retry-after"]), what: `HTTP ${res.status}`, callUntouched: false };
        await drain(res.body, res.counter);
      } catch (err) {
        if (call.signal?.aborted) throw err;
        const tlsError = tlsErrorFor(err, call.registry, ctx);
        if (tlsError) throw tlsError;
        if (!isRetryableError(err)) throw err;
        failure =
          err instanceof TransientError
            ? { status: err.status, retryAfterMs: err.retryAfterMs, cause: err, what: err.message, callUntouched: err.tokenServer }
            : { cause: err, what: String((err as Error)?.message ?? err), callUntouched: false };
      }
      // a retryable failure: wait and go again, within the attempt and time budget
      const pause = Math.min(policy.maxDelayMs, failure.retryAfterMs ?? backoffMs(policy, attempt));
      const tooLate = Date.now() + pause - started > policy.maxTotalMs;
      const mayRepeat = canRetry || (failure.callUntouched && !sent.stream);
      if (!mayRepeat || attempt >= policy.maxAttempts || tooLate) {
        throw new RegistryError(
          "REGISTRY_UNAVAILABLE",
          `${call.method} ${call.path} on ${call.registry} failed after ${attempt} attempt(s): ${failure.what}`,
          { ...ctx, status: failure.status, attempts: attempt },
          { cause: failure.cause },
        );
      }
      this.stats.retries++;
      await delay(pause, call.signal);
    }
  }

  /** Sends one call, following redirects; a 403 from a redirect target (expired URL) re-resolves once. */
  private async sendFollowing(call: Call, sent: { stream: boolean }): Promise<Response & { sentAuthorization?: string }> {
    const scheme = this.schemes.get(call.registry);
    if (scheme) return this.sendFollowingAt(call, sent, `${scheme}//${hostOf(call.registry)}`);
    // the first call to a host finds its scheme: HTTPS, and plain HTTP only where its policy allows
    const policy = this.opts.endpoints.schemePolicy(call.registry);
    const host = hostOf(call.registry);
    const memo = this.opts.schemeMemo;
    const memoSaysPlain = policy !== "https" && memo?.plainHttp(host) === true && !(call.body instanceof Readable);
    if (memoSaysPlain) {
      // it answered in plain HTTP lately (another process found out): no TLS handshake to fail first
      try {
        const res = await this.sendFollowingAt(call, sent, `http://${host}`);
        // a TLS server answers a plain request with 400 ("client sent an HTTP request to an HTTPS server")
        if (res.status !== 400) {
          this.schemes.set(call.registry, "http:");
          return res;
        }
        await drain(res.body, res.counter);
      } catch (err) {
        if (call.signal?.aborted) throw err;
      }
      // not plain HTTP any more (or gone): find out as on a first call
    }
    // the plain-HTTP attempt that may follow connects while the TLS one is still failing
    if (policy !== "https" && !(call.body instanceof Readable)) this.opts.preconnectPlain?.(host);
    // (plain HTTP was just asked, per the memo, and did not answer: not again alongside)
    const early = !memoSaysPlain && this.mayAskPlainEarly(call, policy, host) ? this.askPlainEarly(call, host) : undefined;
    const tlsGiveUp = new AbortController();
    const tls = this.sendFollowingAt({ ...call, signal: call.signal ? AbortSignal.any([call.signal, tlsGiveUp.signal]) : tlsGiveUp.signal }, sent, `https://${host}`);
    tls.catch(() => undefined);
    if (early) {
      // HTTPS and plain HTTP on one port: a registry's answer in plain HTTP (not the 400 a TLS server
      // gives a plain request) means the TLS attempt can only fail, so it is not waited for (a plain
      // server may take a while to refuse a ClientHello: docker-registry ~30 ms after its own answer)
      const plain = await Promise.race([early.answer(), tls.then(() => undefined, () => undefined)]);
      if (plain) {
        tlsGiveUp.abort();
        this.count(host, -1);
        this.schemes.set(call.registry, "http:");
        memo?.remember(host, "http:");
        return early.adopt();
      }
    }
    try {
      const res = await tls;
      early?.discard();
      this.schemes.set(call.registry, "https:");
      memo?.remember(host, "https:");
      return res;
    } catch (err) {
      // on one port, a registry's plain answer settles it whatever the TLS attempt died of (a reset, say)
      const answered = early !== undefined && !call.signal?.aborted && (await early.answer()) !== undefined;
      const fallBack = answered || (!sent.stream && (policy === "https-then-http" ? !call.signal?.aborted : policy === "https-then-plain-http" && speaksPlainHttp(err)));
      if (!fallBack) {
        early?.discard();
        throw err;
      }
      // the TLS attempt is not counted when plain HTTP is the host's answer (as when the plain answer wins the race)
      if (answered || speaksPlainHttp(err)) this.count(host, -1);
      const res = await (early?.adopt() ?? this.sendFollowingAt(call, sent, `http://${host}`));
      this.schemes.set(call.registry, "http:");
      memo?.remember(host, "http:");
      return res;
    }
  }

  /**
   * A first read from a host whose policy allows plain HTTP is also asked over plain HTTP at once, not
   * after the TLS attempt failed: a loopback or `insecure` registry usually speaks plain HTTP, and the
   * failing handshake then costs no round trip (measured: 45–60 ms of every cold `lazypull run` against
   * a local registry). HTTPS still wins whenever it answers. Only a call with no body and no credentials
   * (none are known before a host's first answer) goes out this way: nothing is said in cleartext that
   * waiting for the TLS failure would not also say, and only to a registry named with a port: HTTPS
   * and plain HTTP then share the port, so the plain request goes where the TLS attempt went (a TLS
   * server answers it with a 400), and the TLS failure is slow (the server has to read the ClientHello
   * first). Without a port, a refused 443 fails in one round trip, and nothing goes to port 80 of a
   * registry that is only insecure by `--tls-verify=false`.
   */
  private mayAskPlainEarly(call: Call, policy: SchemePolicy, host: string): boolean {
    return policy !== "https" && /:\d+$/.test(host) && call.body === undefined && (call.method === "GET" || call.method === "HEAD") && !this.auth.knows(call.registry);
  }

  /** The plain-HTTP attempt, sent uncounted: it counts as the call's request only once adopted. */
  private askPlainEarly(call: Call, host: string): {
    /** the plain response when it is a registry's answer, undefined when it failed or is a TLS server's 400 */
    answer(): Promise<(Response & { sentAuthorization?: string }) | undefined>;
    adopt(): Promise<Response & { sentAuthorization?: string }>;
    discard(): void;
  } {
    const loser = new AbortController();
    const probe: Call = { ...call, signal: call.signal ? AbortSignal.any([call.signal, loser.signal]) : loser.signal };
    this.probes.add(probe);
    const response = this.sendFollowingAt(probe, { stream: false }, `http://${host}`);
    response.catch(() => undefined);
    const origin = new URL(`http://${host}`).origin;
    return {
      // the registry itself, in plain HTTP: not a TLS server's 400, nor a redirect that led elsewhere (to HTTPS, say)
      answer: () => response.then((r) => (r.status !== 400 && !(r.status >= 300 && r.status < 400) && r.url.origin === origin ? r : undefined), () => undefined),
      adopt: () => {
        this.count(host, 1);
        return response;
      },
      discard: () => {
        loser.abort();
        void response.then((r) => drain(r.body, r.counter)).catch(() => undefined);
      },
    };
  }

  /** adds `n` requests of `host` to the counters */
  private count(host: string, n: number): void {
    this.stats.requests += n;
    const h = (this.stats.hosts[host] ??= { requests: 0, bytesReceived: 0 });
    h.requests += n;
  }

  private async sendFollowingAt(call: Call, sent: { stream: boolean }, base: string): Promise<Response & { sentAuthorization?: string }> {
    const origin = new URL(base);
    let url = new URL(call.path, base);
    let reResolved = false;
    let hops = 0;
    for (;;) {
      // the registry's credentials go to the registry's own origin and nowhere else
      // scheme included: a redirect from https://reg to http://reg must not carry them in cleartext
      const sameOrigin = url.origin === origin.origin;
      const auth = sameOrigin ? await this.auth.authorization(call) : undefined;
      if (call.body instanceof Readable) sent.stream = true;
      const res: Response & { sentAuthorization?: string } = await this.send(call, url, auth);
      res.sentAuthorization = auth;
      if (res.status >= 300 && res.status < 400 && res.status !== 304 && res.headers.location) {
        await drain(res.body, res.counter);
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
        await drain(res.body, res.counter);
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
    if (!this.probes.has(call)) this.count(url.host, 1);
    const host = (this.stats.hosts[url.host] ??= { requests: 0, bytesReceived: 0 });
    const res = await this.opts.dispatcher.request({
      origin: url.origin,
      path: url.pathname + url.search,
      method: call.method,
      headers,
      body: body ?? null,
      signal: call.signal,
    });
    const perBlob = call.digest === undefined ? undefined : this.blobHostsOf(call.digest);
    return { status: res.statusCode, headers: res.headers, body: res.body as unknown as Readable, url, counter: new HostCounter(this.stats, host, perBlob, url.host) };
  }

  private blobHostsOf(digest: string): Record<string, number> {
    let m = this.blobHosts.get(digest);
    if (!m) {
      // a daemon meets blobs for weeks: keep the most recent ones (Map keeps insertion order)
      if (this.blobHosts.size >= MAX_BLOB_HOSTS) this.blobHosts.delete(this.blobHosts.keys().next().value!);
      this.blobHosts.set(digest, (m = {}));
    }
    return m;
  }

  /**
   * The caller found the bytes last fetched for `digest` wrong (a chunk's digest, after inflating): when a
   * mirror sent them, skip that mirror for a while so the next attempt asks the next source. The registry
   * itself is never set aside: there is nothing behind it.
   */
  distrust(digest: string): boolean {
    const mirror = this.mirrorFor.get(digest);
    if (mirror === undefined) return false;
    this.mirrorFor.delete(digest);
    this.mirrorDownUntil.set(mirror, Date.now() + MIRROR_DOWN_MS);
    this.stats.mirrorFallbacks++;
    return true;
  }

  /** Response bytes received for a blob (or manifest) digest, per host that sent them. */
  bytesByHost(digest: string): Record<string, number> {
    return { ...this.blobHosts.get(digest) };
  }
}

/** Adds what a body reader counts to the client's total and to the host that sent it. */
class HostCounter implements ByteCounter {
  private own = 0;

  constructor(
    private readonly total: ByteCounter,
    private readonly host: HostStats,
    private readonly perBlob: Record<string, number> | undefined,
    private readonly hostName: string,
  ) {}

  get bytesReceived(): number {
    return this.own;
  }

  set bytesReceived(n: number) {
    const delta = n - this.own;
    this.own = n;
    this.host.bytesReceived += delta;
    this.total.bytesReceived += delta;
    if (this.perBlob) this.perBlob[this.hostName] = (this.perBlob[this.hostName] ?? 0) + delta;
  }
}

/** A mirror that did not answer at all (as opposed to answering 404): worth skipping for a while. */
function isUnreachable(err: unknown): boolean {
  const e = err as { code?: unknown; cause?: unknown };
  if (e?.code === "REGISTRY_UNAVAILABLE") return e.cause === undefined || isRetryableError(e.cause);
  return isRetryableError(err) || tlsErrorFor(err, "", {}) !== undefined;
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
