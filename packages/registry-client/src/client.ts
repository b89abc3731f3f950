// RegistryClient is the package's verbs and nothing else: it owns the undici pool, the transport (HTTP,
// auth, the one retry loop) and the range reader's per-registry memory, and hands each verb to the module
// that does that protocol step. The steps live beside it, one per file, as in undici's lib/api:
//   manifests.ts (read a manifest or index), resolve.ts (platform pick and config), blobs.ts (HEAD, whole
//   blobs), ranges.ts (single and multipart ranges, the capability cache), push.ts (blob uploads, manifest
//   PUT), tags.ts (tag list); under them transport.ts, auth.ts, endpoint.ts, credentials.ts and calls.ts.
import { Agent, type Dispatcher } from "undici";
import { fetchBlob, getBlob, headBlob } from "./blobs.js";
import { credentialSource, defaultAuthFiles, type Credentials } from "./credentials.js";
import { Endpoints } from "./endpoint.js";
import { RegistryError } from "./errors.js";
import { getManifest } from "./manifests.js";
import { hostPlatform, parsePlatform, type Platform } from "./platform.js";
import { pushBlob, pushManifest, type BlobBody } from "./push.js";
import { PlainSpares } from "./plain-spares.js";
import { RangeReader } from "./ranges.js";
import { toReference } from "./reference.js";
import { isShortName } from "./registries-conf.js";
import { resolveImage, resolveShortName, type ResolveSteps } from "./resolve.js";
import type { SchemeMemo } from "./scheme-memo.js";
import { DEFAULT_RETRY, type RetryPolicy } from "./retry.js";
import { listTags } from "./tags.js";
import { tlsConnector } from "./tls.js";
import { Transport } from "./transport.js";
import type { BlobInfo, BlobSource, ByteRange, ImageReference, ManifestResult, PushBlobResult, RegistryStats, ResolvedImage } from "./types.js";

export interface RegistryClientOptions {
  /** explicit credentials per registry host (checked before the auth files) */
  credentials?: Record<string, Credentials> | ((registry: string) => Credentials | undefined);
  /** auth files to read, in order (default: REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, ~/.docker/config.json) */
  authFiles?: string[];
  /**
   * registries whose certificates are not verified and which may answer in plain HTTP (host[:port] or
   * `*.domain`), as registries.conf's `insecure = true`; loopback registries fall back to plain HTTP only
   * when they plainly speak it
   */
  insecureRegistries?: string[];
  /** containers-registries.conf(5) (mirrors, rewrites, blocked and insecure registries); default $CONTAINERS_REGISTRIES_CONF or /etc/containers/registries.conf; `false` reads none */
  registriesConf?: string | false;
  /** its drop-in directory (default /etc/containers/registries.conf.d); `false` reads none */
  registriesConfDir?: string | false;
  /** podman's `--tls-verify=false`: verify no certificate and allow plain HTTP, for every registry */
  tlsVerify?: boolean;
  /** podman's `--cert-dir`: CA certificates (`*.crt`) and client certificates (`*.cert` + `*.key`) for every registry, instead of certs.d */
  certDir?: string;
  /** certs.d bases searched for `<base>/<host[:port]>/` (default: podman's: /etc/containers/certs.d, /etc/docker/certs.d, and ~/.config/containers/certs.d for non-root) */
  certsDirs?: string[];
  /** platform picked from indexes (default: this host's) */
  platform?: Platform | string;
  retry?: Partial<RetryPolicy>;
  /** a dispatcher to use instead of the client's own keep-alive Agent (the client will not close it) */
  dispatcher?: Dispatcher;
  /** options for the client's own undici Agent */
  agentOptions?: Agent.Options;
  userAgent?: string;
  /** try several ranges in one request (default true); registries that refuse are remembered */
  multiRange?: boolean;
  /** parallel single-range requests when falling back (default 8) */
  rangeConcurrency?: number;
  /** what a 200 answer to a range request means: slice the range out of the body (default) or fail */
  onRangeIgnored?: "slice" | "error";
  /** blobs up to this size are uploaded in one PUT, larger ones in PATCH chunks (default 32 MiB) */
  monolithicUploadLimit?: number;
  /** PATCH chunk size (default 16 MiB) */
  uploadChunkSize?: number;
  /**
   * hosts that answered in plain HTTP in earlier processes (`fileSchemeMemo`): such a host whose policy
   * allows plain HTTP is asked over HTTP at once, without a failed TLS handshake first
   */
  schemeMemo?: SchemeMemo;
}

export interface PushBlobOptions {
  /** a repository on the same registry that has the blob: mount it from there instead of uploading */
  from?: string | ImageReference;
  signal?: AbortSignal;
}

export type { BlobBody } from "./push.js";

/**
 * The OCI distribution API on one undici keep-alive pool: manifests and indexes (with platform pick),
 * blobs (streamed, ranged, multi-ranged, all digest-checked where the whole is read), push, tags.
 */
export class RegistryClient implements BlobSource {
  private readonly transport: Transport;
  private readonly dispatcher: Dispatcher;
  private readonly ownDispatcher: boolean;
  private readonly opts: RegistryClientOptions;
  private readonly platform: Platform;
  private readonly ranges: RangeReader;
  private readonly endpoints: Endpoints;
  private readonly spares = new PlainSpares();

  constructor(opts: RegistryClientOptions = {}) {
    this.opts = opts;
    this.ownDispatcher = !opts.dispatcher;
    const endpoints = new Endpoints(opts);
    this.endpoints = endpoints;
    this.dispatcher =
      opts.dispatcher ??
      new Agent({
        connections: 32,
        keepAliveTimeout: 30_000,
        keepAliveMaxTimeout: 600_000,
        connect: tlsConnector(
          {
            ...(opts.certDir !== undefined ? { certDir: opts.certDir } : {}),
            ...(opts.certsDirs !== undefined ? { certsDirs: opts.certsDirs } : {}),
            verify: (host) => endpoints.verify(host),
          },
          {},
          this.spares,
        ),
        ...opts.agentOptions,
      });
    const p = typeof opts.platform === "string" ? parsePlatform(opts.platform) : opts.platform;
    if (opts.platform !== undefined && !p) {
      throw new RegistryError("REFERENCE_INVALID", `bad platform ${JSON.stringify(opts.platform)} (want os/arch[/variant])`, {});
    }
    this.platform = p ?? hostPlatform();
    this.transport = new Transport({
      dispatcher: this.dispatcher,
      retry: { ...DEFAULT_RETRY, ...opts.retry },
      userAgent: opts.userAgent ?? "lazypull-registry-client/0",
      endpoints,
      // registries.conf's `credential-helpers` says which helpers, in which order (the auth files by default)
      ...(opts.schemeMemo ? { schemeMemo: opts.schemeMemo } : {}),
      // only our own connector takes spares: with a caller's dispatcher, nothing is opened ahead
      ...(this.ownDispatcher ? { preconnectPlain: (host: string) => this.spares.open(host) } : {}),
      credentials: credentialSource(opts.credentials, () => opts.authFiles ?? defaultAuthFiles(), { helpers: async () => (await endpoints.config()).credentialHelpers }),
    });
    this.ranges = new RangeReader(this.transport, opts);
  }

  /**
   * Starts reading registries.conf (and its drop-ins) now, in the background: the first request needs it
   * and would otherwise wait for those reads (~15 ms from a cold page cache), so a caller with other work
   * to do first (a CLI preparing its host) calls this at once. Errors surface on the first request instead.
   */
  prepare(): void {
    this.endpoints.config().catch(() => undefined);
  }

  /** Counters since creation. */
  stats(): RegistryStats {
    const t = this.transport.stats;
    const hosts = Object.fromEntries(Object.entries(t.hosts).map(([h, v]) => [h, { ...v }]));
    return { ...t, hosts, ...this.ranges.counters };
  }

  /** The bytes last fetched for `digest` failed their check: a mirror that sent them is passed over for 30 s. */
  reportBadBytes(_ref: ImageReference, digest: string): boolean {
    return this.transport.distrust(digest);
  }

  /** Response bytes received for one blob, per host that sent them (a layer's mirror or registry). */
  bytesByHost(digest: string): Record<string, number> {
    return this.transport.bytesByHost(digest);
  }

  async close(): Promise<void> {
    this.spares.close();
    if (this.ownDispatcher) await this.dispatcher.close();
  }

  // ---- manifests ----

  /** A manifest or index by tag or digest, its digest verified against the reference or the registry's header. */
  async getManifest(refIn: ImageReference | string, opts: { signal?: AbortSignal } = {}): Promise<ManifestResult> {
    return getManifest(this.transport, toReference(refIn), opts.signal);
  }

  /**
   * Resolves a reference to one platform's manifest and config (indexes are narrowed by platform). A short
   * name given as a string (`debian:12`) is qualified as podman does — an alias from registries.conf, else
   * each `unqualified-search-registries` entry in order, the first that has the image winning, else docker.io;
   * the result's `ref` is the qualified reference to use from then on. With `cache`, manifests named by
   * digest and the config come from it when they verify (and are kept in it): a second resolve of the same
   * image costs one request by tag, none by digest.
   */
  async resolve(
    refIn: ImageReference | string,
    opts: { platform?: Platform | string } & ResolveSteps = {},
  ): Promise<ResolvedImage & { indexDigest?: string }> {
    const want = (typeof opts.platform === "string" ? parsePlatform(opts.platform) : opts.platform) ?? this.platform;
    if (typeof refIn !== "string" || !isShortName(refIn)) return resolveImage(this.transport, toReference(refIn), want, opts);
    return resolveShortName(this.transport, await this.endpoints.config(), refIn, want, opts);
  }

  // ---- blobs ----

  /** Size (and type) of a blob; REGISTRY_NOT_FOUND when absent. */
  async headBlob(refIn: ImageReference | string, digest: string, opts: { signal?: AbortSignal } = {}): Promise<BlobInfo> {
    return headBlob(this.transport, toReference(refIn), digest, undefined, opts.signal);
  }

  async blobExists(ref: ImageReference | string, digest: string, opts: { signal?: AbortSignal } = {}): Promise<boolean> {
    try {
      await this.headBlob(ref, digest, opts);
      return true;
    } catch (err) {
      if ((err as RegistryError).code === "REGISTRY_NOT_FOUND") return false;
      throw err;
    }
  }

  /**
   * A whole (small) blob in memory, digest verified. A body that does not match its digest is fetched
   * again (at most 3 attempts, backing off as for failed requests): a byte flipped on the way is as
   * transient as a reset, and a config is as worth a retry as a layer chunk. Only a registry that keeps
   * answering wrong bytes ends in DIGEST_MISMATCH.
   */
  async getBlob(refIn: ImageReference | string, digest: string, opts: { signal?: AbortSignal; maxBytes?: number } = {}): Promise<Buffer> {
    return getBlob(this.transport, toReference(refIn), digest, opts);
  }

  /** The whole blob as a stream; the stream errors with DIGEST_MISMATCH before ending if the content is wrong. */
  async fetchBlob(refIn: ImageReference, digest: string, signal?: AbortSignal): Promise<NodeJS.ReadableStream> {
    return fetchBlob(this.transport, toReference(refIn), digest, signal);
  }

  /** Bytes [offset, offset+length) of a blob. A registry that ignores Range gets the range sliced out of its answer. */
  async fetchRange(refIn: ImageReference, digest: string, range: ByteRange, signal?: AbortSignal): Promise<Buffer> {
    return this.ranges.fetchRange(toReference(refIn), digest, range, signal);
  }

  /** Several ranges, in one multipart/byteranges request where the registry allows it; results in the order asked. */
  async fetchRanges(refIn: ImageReference, digest: string, ranges: ByteRange[], signal?: AbortSignal): Promise<Buffer[]> {
    return this.ranges.fetchRanges(toReference(refIn), digest, ranges, signal);
  }

  // ---- push ----

  /**
   * Uploads a blob unless the repository has it: mounted from `from` when possible, else one PUT for small
   * blobs, PATCH chunks then PUT for large ones. The registry checks the digest; so does the chunked path.
   */
  async pushBlob(refIn: ImageReference | string, digest: string, size: number, body: BlobBody, opts: PushBlobOptions = {}): Promise<PushBlobResult> {
    const from = opts.from === undefined ? undefined : typeof opts.from === "string" ? opts.from : opts.from.repository;
    return pushBlob(this.transport, toReference(refIn), digest, size, body, {
      from,
      monolithicUploadLimit: this.opts.monolithicUploadLimit,
      uploadChunkSize: this.opts.uploadChunkSize,
      signal: opts.signal,
    });
  }

  /** PUTs a manifest or index under the reference's tag (or digest) and returns its digest. */
  async pushManifest(refIn: ImageReference | string, bytes: Buffer, mediaType: string, opts: { signal?: AbortSignal } = {}): Promise<string> {
    return pushManifest(this.transport, toReference(refIn), bytes, mediaType, opts.signal);
  }

  // ---- tags ----

  /** All tags of the reference's repository (follows `Link: rel="next"` pagination). */
  async listTags(refIn: ImageReference | string, opts: { signal?: AbortSignal } = {}): Promise<string[]> {
    return listTags(this.transport, toReference(refIn), opts.signal);
  }
}
