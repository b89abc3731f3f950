import { createHash } from "node:crypto";
import { Readable, pipeline } from "node:stream";
import { Agent, type Dispatcher } from "undici";
import { drain, readAll, sliceBody } from "./body.js";
import { defaultAuthFiles, lookupCredentials, type Credentials } from "./credentials.js";
import { RegistryError, type RegistryErrorContext } from "./errors.js";
import { isLoopbackRegistry, matchesInsecure, readInsecureRegistries } from "./insecure.js";
import { MANIFEST_ACCEPT, isIndexMediaType, isManifestMediaType, isSchema1MediaType } from "./media-types.js";
import { byterangesBoundary, parseByteranges, parseContentRange, type BytePart } from "./multipart.js";
import { formatPlatform, hostPlatform, parsePlatform, selectPlatform, type Platform } from "./platform.js";
import { isDigest, toReference, type Reference } from "./reference.js";
import { verifyingStream } from "./verify.js";
import { DEFAULT_RETRY, type RetryPolicy } from "./retry.js";
import { checkImageConfig } from "./image-config.js";
import { Transport, errorFor, header, type Call, type Response } from "./transport.js";
import type {
  BlobInfo,
  BlobSource,
  ByteRange,
  Descriptor,
  ImageConfig,
  ImageIndex,
  ImageManifest,
  ImageReference,
  ManifestResult,
  PushBlobResult,
  RegistryStats,
  ResolvedImage,
} from "./types.js";

export interface RegistryClientOptions {
  /** explicit credentials per registry host (checked before the auth files) */
  credentials?: Record<string, Credentials> | ((registry: string) => Credentials | undefined);
  /** auth files to read, in order (default: REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, ~/.docker/config.json) */
  authFiles?: string[];
  /** registries reached over plain HTTP (besides loopback, which always is) */
  insecureRegistries?: string[];
  /** containers-registries.conf(5) whose `insecure = true` entries count too; `false` reads none */
  registriesConf?: string | false;
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
}

export interface PushBlobOptions {
  /** a repository on the same registry that has the blob: mount it from there instead of uploading */
  from?: string | ImageReference;
  signal?: AbortSignal;
}

/** A blob body: bytes, a factory of fresh streams (retryable), or a stream (sent once). */
export type BlobBody = Buffer | Uint8Array | (() => Readable) | Readable;

const MAX_MANIFEST_BYTES = 4 << 20;
const MAX_CONFIG_BYTES = 16 << 20;

function pullScope(ref: Reference): string[] {
  return [`repository:${ref.repository}:pull`];
}

function pushScope(ref: Reference, from?: string): string[] {
  const s = [`repository:${ref.repository}:pull,push`];
  if (from && from !== ref.repository) s.push(`repository:${from}:pull`);
  return s;
}

function ctxOf(ref: Reference, digest?: string): RegistryErrorContext {
  return { registry: ref.registry, repository: ref.repository, digest };
}

function checkDigest(digest: string, ref: Reference): void {
  if (!isDigest(digest)) throw new RegistryError("DIGEST_INVALID", `"${digest}" is not a digest (want sha256:<64 hex>)`, ctxOf(ref, digest));
}

function isDescriptor(d: unknown): d is Descriptor {
  const x = d as Descriptor | null;
  return typeof x === "object" && x !== null && typeof x.digest === "string" && isDigest(x.digest) && Number.isSafeInteger(x.size) && x.size >= 0;
}

interface RegistryCaps {
  multiRange?: boolean;
}

/**
 * The OCI distribution API on one undici keep-alive pool: manifests and indexes (with platform pick),
 * blobs (streamed, ranged, multi-ranged, all digest-checked where the whole is read), push, tags.
 */
/** fetches of a whole blob whose bytes did not match its digest, before DIGEST_MISMATCH is final */
const MISMATCH_ATTEMPTS = 3;

export class RegistryClient implements BlobSource {
  private readonly transport: Transport;
  private readonly dispatcher: Dispatcher;
  private readonly ownDispatcher: boolean;
  private readonly opts: RegistryClientOptions;
  private readonly platform: Platform;
  private readonly caps = new Map<string, RegistryCaps>();
  private readonly credCache = new Map<string, Promise<Credentials | undefined>>();
  private insecure?: Promise<string[]>;
  private readonly counters = { rangeRequests: 0, multiRangeHits: 0, multiRangeFallbacks: 0, rangeIgnored: 0 };

  constructor(opts: RegistryClientOptions = {}) {
    this.opts = opts;
    this.ownDispatcher = !opts.dispatcher;
    this.dispatcher =
      opts.dispatcher ?? new Agent({ connections: 32, keepAliveTimeout: 30_000, keepAliveMaxTimeout: 600_000, ...opts.agentOptions });
    const p = typeof opts.platform === "string" ? parsePlatform(opts.platform) : opts.platform;
    if (opts.platform !== undefined && !p) {
      throw new RegistryError("REFERENCE_INVALID", `bad platform "${String(opts.platform)}" (want os/arch[/variant])`, {});
    }
    this.platform = p ?? hostPlatform();
    this.transport = new Transport({
      dispatcher: this.dispatcher,
      retry: { ...DEFAULT_RETRY, ...opts.retry },
      userAgent: opts.userAgent ?? "lazypull-registry-client/0",
      baseUrl: (r) => this.baseUrl(r),
      credentials: (r, repo) => this.credentials(r, repo),
    });
  }

  /** Counters since creation. */
  stats(): RegistryStats {
    return { ...this.transport.stats, ...this.counters };
  }

  async close(): Promise<void> {
    if (this.ownDispatcher) await this.dispatcher.close();
  }

  // ---- manifests ----

  /** A manifest or index by tag or digest, its digest verified against the reference or the registry's header. */
  async getManifest(refIn: ImageReference | string, opts: { signal?: AbortSignal } = {}): Promise<ManifestResult> {
    const ref = toReference(refIn);
    const ctx = ctxOf(ref, ref.digest);
    const call: Call = {
      method: "GET",
      registry: ref.registry,
      repository: ref.repository,
      digest: ref.digest,
      path: `/v2/${ref.repository}/manifests/${ref.reference}`,
      headers: { accept: MANIFEST_ACCEPT.join(", ") },
      scopes: pullScope(ref),
      signal: opts.signal,
    };
    return this.transport.request(call, async (res) => {
      if (res.status !== 200) throw await errorFor(res, this.transport.stats, ctx, `manifest ${ref}`);
      const bytes = await readAll(res.body, this.transport.stats, MAX_MANIFEST_BYTES, ctx);
      const algorithm = (ref.digest ?? header(res.headers, "docker-content-digest") ?? "sha256:").startsWith("sha512:") ? "sha512" : "sha256";
      const digest = `${algorithm}:${createHash(algorithm).update(bytes).digest("hex")}`;
      const claimed = ref.digest ?? header(res.headers, "docker-content-digest");
      if (claimed && claimed !== digest) {
        throw new RegistryError("DIGEST_MISMATCH", `manifest ${ref} hashes to ${digest}, expected ${claimed}`, { ...ctx, digest: claimed, actual: digest });
      }
      let doc: { schemaVersion?: number; mediaType?: string; manifests?: unknown; config?: unknown; layers?: unknown };
      try {
        doc = JSON.parse(bytes.toString("utf8")) as typeof doc;
      } catch (cause) {
        throw new RegistryError("REGISTRY_BAD_RESPONSE", `manifest ${ref} is not JSON`, ctx, { cause });
      }
      const contentType = header(res.headers, "content-type")?.split(";")[0]?.trim();
      const mediaType = doc.mediaType ?? contentType ?? "";
      if (doc.schemaVersion === 1 || isSchema1MediaType(doc.mediaType) || (doc.mediaType === undefined && contentType && isSchema1MediaType(contentType) && doc.schemaVersion !== 2)) {
        throw new RegistryError(
          "REGISTRY_SCHEMA1_UNSUPPORTED",
          `manifest ${ref} is Docker schema 1, which is deprecated and not supported; re-push the image with a current tool`,
          { ...ctx, mediaType },
        );
      }
      if (doc.schemaVersion !== 2) throw new RegistryError("REGISTRY_BAD_RESPONSE", `manifest ${ref} has schemaVersion ${doc.schemaVersion}`, ctx);
      const isIndex = isIndexMediaType(mediaType) || (!isManifestMediaType(mediaType) && Array.isArray(doc.manifests));
      if (isIndex) {
        if (!Array.isArray(doc.manifests) || !doc.manifests.every(isDescriptor)) {
          throw new RegistryError("REGISTRY_BAD_RESPONSE", `index ${ref} has malformed manifests[]`, ctx);
        }
        return { kind: "index", ref, digest, mediaType, bytes, index: doc as ImageIndex };
      }
      if (!isDescriptor(doc.config) || !Array.isArray(doc.layers) || !doc.layers.every(isDescriptor)) {
        throw new RegistryError("REGISTRY_BAD_RESPONSE", `manifest ${ref} has a malformed config or layers[]`, { ...ctx, mediaType });
      }
      return { kind: "manifest", ref, digest, mediaType, bytes, manifest: doc as ImageManifest };
    });
  }

  /** Resolves a reference to one platform's manifest and config (indexes are narrowed by platform). */
  async resolve(refIn: ImageReference | string, opts: { platform?: Platform | string; signal?: AbortSignal } = {}): Promise<ResolvedImage & { indexDigest?: string }> {
    const ref = toReference(refIn);
    const want = (typeof opts.platform === "string" ? parsePlatform(opts.platform) : opts.platform) ?? this.platform;
    let m = await this.getManifest(ref, { signal: opts.signal });
    let indexDigest: string | undefined;
    if (m.kind === "index") {
      indexDigest = m.digest;
      const pick = selectPlatform(m.index.manifests, want);
      if (!pick) {
        const have = m.index.manifests.map((d) => (d.platform ? formatPlatform(d.platform) : "?")).join(", ");
        throw new RegistryError("REGISTRY_NO_MATCHING_PLATFORM", `${ref} has no image for ${formatPlatform(want)} (has: ${have})`, {
          ...ctxOf(ref, m.digest),
          platform: formatPlatform(want),
        });
      }
      m = await this.getManifest(ref.withDigest(pick.digest), { signal: opts.signal });
      if (m.kind !== "manifest") throw new RegistryError("REGISTRY_BAD_RESPONSE", `index ${ref} points at another index ${pick.digest}`, ctxOf(ref, pick.digest));
    }
    const configBytes = await this.getBlob(ref, m.manifest.config.digest, { signal: opts.signal, maxBytes: MAX_CONFIG_BYTES });
    let parsed: unknown;
    try {
      parsed = JSON.parse(configBytes.toString("utf8"));
    } catch (cause) {
      throw new RegistryError("REGISTRY_BAD_RESPONSE", `config ${m.manifest.config.digest} of ${ref} is not JSON`, ctxOf(ref, m.manifest.config.digest), { cause });
    }
    const config = checkImageConfig(parsed, m.manifest.layers.length, `config ${m.manifest.config.digest} of ${ref}`, ctxOf(ref, m.manifest.config.digest));
    return { ref, manifestDigest: m.digest, manifest: m.manifest, manifestBytes: m.bytes, config, indexDigest };
  }

  // ---- blobs ----

  /** Size (and type) of a blob; REGISTRY_NOT_FOUND when absent. */
  async headBlob(refIn: ImageReference | string, digest: string, opts: { signal?: AbortSignal } = {}): Promise<BlobInfo> {
    return this.headBlobScoped(toReference(refIn), digest, undefined, opts.signal);
  }

  private async headBlobScoped(ref: Reference, digest: string, scopes: string[] | undefined, signal?: AbortSignal): Promise<BlobInfo> {
    checkDigest(digest, ref);
    const ctx = ctxOf(ref, digest);
    const call = this.blobCall(ref, digest, "HEAD", signal);
    if (scopes) call.scopes = scopes;
    return this.transport.request(call, async (res) => {
      await drain(res.body, this.transport.stats);
      if (res.status === 404) throw new RegistryError("REGISTRY_NOT_FOUND", `blob ${digest} not found in ${ref.name}`, { ...ctx, status: 404 });
      if (res.status === 403) throw new RegistryError("REGISTRY_DENIED", `access to blob ${digest} in ${ref.name} denied`, { ...ctx, status: 403 });
      if (res.status !== 200) throw new RegistryError("REGISTRY_BAD_RESPONSE", `HEAD blob ${digest}: HTTP ${res.status}`, { ...ctx, status: res.status });
      const size = Number(header(res.headers, "content-length"));
      if (!Number.isSafeInteger(size) || size < 0) throw new RegistryError("REGISTRY_BAD_RESPONSE", `HEAD blob ${digest}: no Content-Length`, ctx);
      const claimed = header(res.headers, "docker-content-digest");
      if (claimed && claimed !== digest) throw new RegistryError("DIGEST_MISMATCH", `HEAD blob ${digest} answered for ${claimed}`, { ...ctx, actual: claimed });
      const mediaType = header(res.headers, "content-type");
      return mediaType ? { digest, size, mediaType } : { digest, size };
    });
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
    const ref = toReference(refIn);
    checkDigest(digest, ref);
    const ctx = ctxOf(ref, digest);
    const retry = { ...DEFAULT_RETRY, ...this.opts.retry };
    const attempts = Math.max(1, Math.min(MISMATCH_ATTEMPTS, retry.maxAttempts));
    for (let attempt = 1; ; attempt++) {
      const bytes = await this.transport.request(this.blobCall(ref, digest, "GET", opts.signal), async (res) => {
        if (res.status !== 200) throw await errorFor(res, this.transport.stats, ctx, `blob ${digest} of ${ref.name}`);
        return readAll(res.body, this.transport.stats, opts.maxBytes ?? 256 << 20, ctx);
      });
      const actual = `${digest.slice(0, digest.indexOf(":"))}:${createHash(digest.startsWith("sha512:") ? "sha512" : "sha256").update(bytes).digest("hex")}`;
      if (actual === digest) return bytes;
      if (attempt >= attempts || opts.signal?.aborted) {
        throw new RegistryError("DIGEST_MISMATCH", `blob ${digest} of ${ref.name} hashes to ${actual} (${attempt} attempt${attempt === 1 ? "" : "s"})`, { ...ctx, actual, attempts: attempt });
      }
      this.transport.stats.retries++;
      await new Promise((r) => setTimeout(r, Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** (attempt - 1))));
    }
  }

  /** The whole blob as a stream; the stream errors with DIGEST_MISMATCH before ending if the content is wrong. */
  async fetchBlob(refIn: ImageReference, digest: string, signal?: AbortSignal): Promise<NodeJS.ReadableStream> {
    const ref = toReference(refIn);
    checkDigest(digest, ref);
    const ctx = ctxOf(ref, digest);
    return this.transport.request(this.blobCall(ref, digest, "GET", signal), async (res) => {
      if (res.status !== 200) throw await errorFor(res, this.transport.stats, ctx, `blob ${digest} of ${ref.name}`);
      const len = header(res.headers, "content-length");
      const verifier = verifyingStream(digest, len === undefined ? undefined : Number(len), this.transport.stats, ctx);
      pipeline(res.body, verifier, () => {
        // errors reach the consumer through `verifier`
      });
      return verifier;
    });
  }

  /** Bytes [offset, offset+length) of a blob. A registry that ignores Range gets the range sliced out of its answer. */
  async fetchRange(refIn: ImageReference, digest: string, range: ByteRange, signal?: AbortSignal): Promise<Buffer> {
    const ref = toReference(refIn);
    checkDigest(digest, ref);
    const ctx = { ...ctxOf(ref, digest), offset: range.offset, length: range.length };
    if (!Number.isSafeInteger(range.offset) || !Number.isSafeInteger(range.length) || range.offset < 0 || range.length < 0) {
      throw new RegistryError("REGISTRY_RANGE_NOT_SATISFIABLE", `bad range ${range.offset}+${range.length}`, ctx);
    }
    if (range.length === 0) return Buffer.alloc(0);
    const end = range.offset + range.length - 1;
    this.counters.rangeRequests++;
    const call = this.blobCall(ref, digest, "GET", signal, `bytes=${range.offset}-${end}`);
    return this.transport.request(call, async (res) => {
      if (res.status === 206) {
        const cr = parseContentRange(header(res.headers, "content-range"));
        if (!cr || cr.start > range.offset || cr.end < end) {
          await drain(res.body, this.transport.stats);
          throw new RegistryError("REGISTRY_BAD_RESPONSE", `range ${range.offset}-${end} of ${digest} answered with Content-Range ${header(res.headers, "content-range")}`, ctx);
        }
        const body = await readAll(res.body, this.transport.stats, cr.end - cr.start + 1, ctx);
        if (body.length !== cr.end - cr.start + 1) throw new RegistryError("REGISTRY_BAD_RESPONSE", `range ${range.offset}-${end} of ${digest}: short body (${body.length} bytes)`, ctx);
        return cr.start === range.offset && cr.end === end ? body : body.subarray(range.offset - cr.start, range.offset - cr.start + range.length);
      }
      if (res.status === 200) return this.sliceIgnoredRange(res, ref, digest, range, ctx);
      if (res.status === 416) {
        await drain(res.body, this.transport.stats);
        throw new RegistryError("REGISTRY_RANGE_NOT_SATISFIABLE", `range ${range.offset}-${end} is outside blob ${digest}`, { ...ctx, status: 416 });
      }
      throw await errorFor(res, this.transport.stats, ctx, `range ${range.offset}-${end} of blob ${digest}`);
    });
  }

  /** Several ranges, in one multipart/byteranges request where the registry allows it; results in the order asked. */
  async fetchRanges(refIn: ImageReference, digest: string, ranges: ByteRange[], signal?: AbortSignal): Promise<Buffer[]> {
    const ref = toReference(refIn);
    checkDigest(digest, ref);
    const wanted = ranges.map((r, i) => ({ r, i })).filter(({ r }) => r.length > 0);
    const out: Buffer[] = ranges.map(() => Buffer.alloc(0));
    if (wanted.length === 0) return out;
    const caps = this.capsOf(ref.registry);
    if (wanted.length === 1 || this.opts.multiRange === false || caps.multiRange === false) {
      await this.fetchSingles(ref, digest, wanted, out, signal);
      return out;
    }
    for (const { r } of wanted) {
      if (!Number.isSafeInteger(r.offset) || !Number.isSafeInteger(r.length) || r.offset < 0 || r.length < 0) {
        throw new RegistryError("REGISTRY_RANGE_NOT_SATISFIABLE", `bad range ${r.offset}+${r.length}`, ctxOf(ref, digest));
      }
    }
    const ctx = ctxOf(ref, digest);
    const spec = `bytes=${wanted.map(({ r }) => `${r.offset}-${r.offset + r.length - 1}`).join(",")}`;
    this.counters.rangeRequests++;
    const missing = await this.transport.request(this.blobCall(ref, digest, "GET", signal, spec), async (res) => {
      let parts: BytePart[] | undefined;
      if (res.status === 206) {
        const boundary = byterangesBoundary(header(res.headers, "content-type"));
        if (boundary) {
          const maxBytes = wanted.reduce((n, { r }) => n + r.length, 0) * 2 + 64 * 1024 + wanted.length * 512;
          parts = parseByteranges(await readAll(res.body, this.transport.stats, maxBytes, ctx), boundary);
          if (!parts) throw new RegistryError("REGISTRY_BAD_RESPONSE", `malformed multipart/byteranges for ${digest}`, ctx);
        } else {
          // the registry merged the ranges into one
          const cr = parseContentRange(header(res.headers, "content-range"));
          const lo = Math.min(...wanted.map(({ r }) => r.offset));
          const hi = Math.max(...wanted.map(({ r }) => r.offset + r.length - 1));
          if (!cr || cr.end - cr.start > 2 * (hi - lo + 1) + (1 << 20)) {
            await drain(res.body, this.transport.stats);
            throw new RegistryError("REGISTRY_BAD_RESPONSE", `multi-range answer for ${digest} has Content-Range ${header(res.headers, "content-range")}`, ctx);
          }
          const data = await readAll(res.body, this.transport.stats, cr.end - cr.start + 1, ctx);
          if (data.length !== cr.end - cr.start + 1) throw new RegistryError("REGISTRY_BAD_RESPONSE", `short range body for ${digest}`, ctx);
          parts = [{ start: cr.start, end: cr.end, data }];
        }
        this.counters.multiRangeHits++;
        caps.multiRange = true;
      } else if (res.status === 200) {
        // Range ignored (or refused as too costly, as Go's ServeContent does): slice from the body, then use single ranges
        caps.multiRange = false;
        this.counters.multiRangeFallbacks++;
        this.counters.rangeIgnored++;
        const hi = Math.max(...wanted.map(({ r }) => r.offset + r.length));
        const data = await sliceBody(res.body, this.transport.stats, 0, hi);
        if (!data) throw new RegistryError("REGISTRY_RANGE_NOT_SATISFIABLE", `ranges reach past the end of blob ${digest}`, ctx);
        parts = [{ start: 0, end: hi - 1, data }];
      } else if (res.status === 400 || res.status === 416 || res.status === 501) {
        caps.multiRange = false;
        this.counters.multiRangeFallbacks++;
        await drain(res.body, this.transport.stats);
        return wanted;
      } else {
        throw await errorFor(res, this.transport.stats, ctx, `ranges of blob ${digest}`);
      }
      const left: typeof wanted = [];
      for (const w of wanted) {
        const p = parts.find((p) => p.start <= w.r.offset && p.end >= w.r.offset + w.r.length - 1);
        if (p) out[w.i] = p.data.subarray(w.r.offset - p.start, w.r.offset - p.start + w.r.length);
        else left.push(w);
      }
      return left;
    });
    if (missing.length) await this.fetchSingles(ref, digest, missing, out, signal);
    return out;
  }

  private async fetchSingles(ref: Reference, digest: string, todo: { r: ByteRange; i: number }[], out: Buffer[], signal?: AbortSignal): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < todo.length) {
        const w = todo[next++]!;
        out[w.i] = await this.fetchRange(ref, digest, w.r, signal);
      }
    };
    const n = Math.min(todo.length, this.opts.rangeConcurrency ?? 8);
    await Promise.all(Array.from({ length: n }, worker));
  }

  private async sliceIgnoredRange(res: Response, ref: Reference, digest: string, range: ByteRange, ctx: RegistryErrorContext): Promise<Buffer> {
    this.counters.rangeIgnored++;
    if (this.opts.onRangeIgnored === "error") {
      res.body.destroy();
      throw new RegistryError("REGISTRY_RANGE_UNSUPPORTED", `${ref.registry} ignored Range for blob ${digest} and sent the whole blob`, { ...ctx, status: 200 });
    }
    const data = await sliceBody(res.body, this.transport.stats, range.offset, range.length);
    if (!data) throw new RegistryError("REGISTRY_RANGE_NOT_SATISFIABLE", `range ${range.offset}+${range.length} is outside blob ${digest}`, ctx);
    return data;
  }

  private blobCall(ref: Reference, digest: string, method: "GET" | "HEAD", signal?: AbortSignal, range?: string): Call {
    const headers: Record<string, string> = { "accept-encoding": "identity" };
    if (range) headers.range = range;
    return {
      method,
      registry: ref.registry,
      repository: ref.repository,
      digest,
      path: `/v2/${ref.repository}/blobs/${digest}`,
      headers,
      scopes: pullScope(ref),
      signal,
    };
  }

  private capsOf(registry: string): RegistryCaps {
    let c = this.caps.get(registry);
    if (!c) {
      c = {};
      this.caps.set(registry, c);
    }
    return c;
  }

  // ---- push ----

  /**
   * Uploads a blob unless the repository has it: mounted from `from` when possible, else one PUT for small
   * blobs, PATCH chunks then PUT for large ones. The registry checks the digest; so does the chunked path.
   */
  async pushBlob(refIn: ImageReference | string, digest: string, size: number, body: BlobBody, opts: PushBlobOptions = {}): Promise<PushBlobResult> {
    const ref = toReference(refIn);
    checkDigest(digest, ref);
    const ctx = ctxOf(ref, digest);
    const from = opts.from === undefined ? undefined : typeof opts.from === "string" ? opts.from : opts.from.repository;
    const scopes = pushScope(ref, from);
    // the existence check asks for the push scope too, so one token serves the whole upload
    const exists = await this.headBlobScoped(ref, digest, scopes, opts.signal).then(
      () => true,
      (err: RegistryError) => {
        if (err.code === "REGISTRY_NOT_FOUND") return false;
        throw err;
      },
    );
    if (exists) return { digest, size, outcome: "exists" };
    const q = from ? `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}` : "";
    const start = await this.transport.request(
      { method: "POST", registry: ref.registry, repository: ref.repository, digest, path: `/v2/${ref.repository}/blobs/uploads/${q}`, headers: { "content-length": "0" }, scopes, signal: opts.signal },
      async (res) => {
        if (res.status === 201) {
          await drain(res.body, this.transport.stats);
          return { mounted: true as const };
        }
        if (res.status !== 202) throw await errorFor(res, this.transport.stats, ctx, `starting upload of ${digest} to ${ref.name}`);
        await drain(res.body, this.transport.stats);
        const loc = header(res.headers, "location");
        if (!loc) throw new RegistryError("REGISTRY_BAD_RESPONSE", `upload of ${digest} to ${ref.name}: no Location`, ctx);
        return { mounted: false as const, location: new URL(loc, res.url).toString() };
      },
    );
    if (start.mounted) return { digest, size, outcome: "mounted" };
    let location = start.location;
    const limit = this.opts.monolithicUploadLimit ?? 32 << 20;
    if (size > limit) {
      location = await this.uploadChunks(ref, digest, size, body, location, scopes, opts.signal);
      await this.finishUpload(ref, digest, size, location, Buffer.alloc(0), scopes, opts.signal);
    } else {
      await this.finishUpload(ref, digest, size, location, body, scopes, opts.signal);
    }
    return { digest, size, outcome: "uploaded" };
  }

  private async finishUpload(ref: Reference, digest: string, size: number, location: string, body: BlobBody, scopes: string[], signal?: AbortSignal): Promise<void> {
    const ctx = ctxOf(ref, digest);
    const url = new URL(location);
    url.searchParams.set("digest", digest);
    const bytes = Buffer.isBuffer(body) || body instanceof Uint8Array ? body : undefined;
    const contentLength = bytes ? bytes.byteLength : size;
    await this.transport.request(
      {
        method: "PUT",
        registry: ref.registry,
        repository: ref.repository,
        digest,
        path: url.toString(),
        headers: { "content-type": "application/octet-stream", "content-length": String(contentLength) },
        body: body as Call["body"],
        scopes,
        signal,
      },
      async (res) => {
        if (res.status === 400) {
          const err = await errorFor(res, this.transport.stats, ctx, `upload of ${digest} to ${ref.name}`);
          if (err.context.registryErrors?.includes("DIGEST_INVALID") || err.context.registryErrors?.includes("SIZE_INVALID")) {
            throw new RegistryError("DIGEST_MISMATCH", `registry ${ref.registry} found the uploaded bytes do not match ${digest}`, err.context);
          }
          throw err;
        }
        if (res.status !== 201) throw await errorFor(res, this.transport.stats, ctx, `upload of ${digest} to ${ref.name}`);
        await drain(res.body, this.transport.stats);
        const claimed = header(res.headers, "docker-content-digest");
        if (claimed && claimed !== digest) throw new RegistryError("DIGEST_MISMATCH", `registry stored ${claimed} for upload of ${digest}`, { ...ctx, actual: claimed });
      },
    );
  }

  private async uploadChunks(ref: Reference, digest: string, size: number, body: BlobBody, location: string, scopes: string[], signal?: AbortSignal): Promise<string> {
    const ctx = ctxOf(ref, digest);
    const chunkSize = this.opts.uploadChunkSize ?? 16 << 20;
    const hash = createHash(digest.startsWith("sha512:") ? "sha512" : "sha256");
    const source: AsyncIterable<Buffer> | Iterable<Buffer> =
      Buffer.isBuffer(body) || body instanceof Uint8Array ? [Buffer.from(body.buffer, body.byteOffset, body.byteLength)] : typeof body === "function" ? body() : body;
    let offset = 0;
    let pending: Buffer[] = [];
    let pendingLen = 0;
    const send = async (chunk: Buffer) => {
      hash.update(chunk);
      const end = offset + chunk.length - 1;
      location = await this.transport.request(
        {
          method: "PATCH",
          registry: ref.registry,
          repository: ref.repository,
          digest,
          path: location,
          headers: { "content-type": "application/octet-stream", "content-range": `${offset}-${end}`, "content-length": String(chunk.length) },
          body: chunk,
          scopes,
          signal,
          retry: false,
        },
        async (res) => {
          if (res.status !== 202) throw await errorFor(res, this.transport.stats, ctx, `chunk ${offset}-${end} of ${digest} to ${ref.name}`);
          await drain(res.body, this.transport.stats);
          const loc = header(res.headers, "location");
          return loc ? new URL(loc, res.url).toString() : location;
        },
      );
      offset = end + 1;
    };
    for await (const piece of source) {
      let p = piece;
      while (p.length > 0) {
        const take = Math.min(p.length, chunkSize - pendingLen);
        pending.push(p.subarray(0, take));
        pendingLen += take;
        p = p.subarray(take);
        if (pendingLen === chunkSize) {
          await send(Buffer.concat(pending, pendingLen));
          pending = [];
          pendingLen = 0;
        }
      }
    }
    if (pendingLen > 0) await send(Buffer.concat(pending, pendingLen));
    const actual = `${digest.slice(0, digest.indexOf(":"))}:${hash.digest("hex")}`;
    if (offset !== size || actual !== digest) {
      throw new RegistryError("DIGEST_MISMATCH", `blob body for ${digest} (${size} bytes) was ${offset} bytes hashing to ${actual}`, { ...ctx, actual });
    }
    return location;
  }

  /** PUTs a manifest or index under the reference's tag (or digest) and returns its digest. */
  async pushManifest(refIn: ImageReference | string, bytes: Buffer, mediaType: string, opts: { signal?: AbortSignal } = {}): Promise<string> {
    const ref = toReference(refIn);
    const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
    const ctx = ctxOf(ref, digest);
    if (ref.digest && ref.digest !== digest && !ref.tag) {
      throw new RegistryError("DIGEST_MISMATCH", `manifest bytes hash to ${digest}, not ${ref.digest}`, { ...ctx, actual: digest, digest: ref.digest });
    }
    const target = ref.tag ?? digest;
    return this.transport.request(
      {
        method: "PUT",
        registry: ref.registry,
        repository: ref.repository,
        digest,
        path: `/v2/${ref.repository}/manifests/${target}`,
        headers: { "content-type": mediaType, "content-length": String(bytes.length) },
        body: bytes,
        scopes: pushScope(ref),
        signal: opts.signal,
      },
      async (res) => {
        if (res.status !== 201 && res.status !== 200) throw await errorFor(res, this.transport.stats, ctx, `pushing manifest ${ref}`);
        await drain(res.body, this.transport.stats);
        const claimed = header(res.headers, "docker-content-digest");
        if (claimed && claimed !== digest) throw new RegistryError("DIGEST_MISMATCH", `registry stored manifest ${ref} as ${claimed}, expected ${digest}`, { ...ctx, actual: claimed });
        return digest;
      },
    );
  }

  /** All tags of the reference's repository (follows `Link: rel="next"` pagination). */
  async listTags(refIn: ImageReference | string, opts: { signal?: AbortSignal } = {}): Promise<string[]> {
    const ref = toReference(refIn);
    const ctx = ctxOf(ref);
    const tags: string[] = [];
    let path: string | undefined = `/v2/${ref.repository}/tags/list?n=1000`;
    for (let pages = 0; path && pages < 1000; pages++) {
      const page: { tags: string[]; next?: string } = await this.transport.request(
        { method: "GET", registry: ref.registry, repository: ref.repository, path, scopes: pullScope(ref), signal: opts.signal },
        async (res) => {
          if (res.status !== 200) throw await errorFor(res, this.transport.stats, ctx, `tags of ${ref.name}`);
          const text = (await readAll(res.body, this.transport.stats, 16 << 20, ctx)).toString("utf8");
          let json: { tags?: string[] | null };
          try {
            json = JSON.parse(text) as typeof json;
          } catch (cause) {
            throw new RegistryError("REGISTRY_BAD_RESPONSE", `tag list of ${ref.name} is not JSON`, ctx, { cause });
          }
          const link = header(res.headers, "link");
          const next = link ? /<([^>]+)>\s*;\s*rel="?next"?/.exec(link)?.[1] : undefined;
          return { tags: json.tags ?? [], next: next ? new URL(next, res.url).toString() : undefined };
        },
      );
      tags.push(...page.tags);
      path = page.next;
    }
    return tags;
  }

  // ---- configuration ----

  private async baseUrl(registry: string): Promise<string> {
    const host = registry === "docker.io" ? "registry-1.docker.io" : registry;
    if (isLoopbackRegistry(registry)) return `http://${host}`;
    if (matchesInsecure(registry, this.opts.insecureRegistries ?? [])) return `http://${host}`;
    if (this.opts.registriesConf !== false) {
      this.insecure ??= readInsecureRegistries(this.opts.registriesConf ?? "/etc/containers/registries.conf");
      if (matchesInsecure(registry, await this.insecure)) return `http://${host}`;
    }
    return `https://${host}`;
  }

  private credentials(registry: string, repository?: string): Promise<Credentials | undefined> {
    const key = `${registry}/${repository ?? ""}`;
    let p = this.credCache.get(key);
    if (!p) {
      const c = this.opts.credentials;
      const explicit = typeof c === "function" ? c(registry) : c?.[registry];
      p = explicit ? Promise.resolve(explicit) : lookupCredentials(this.opts.authFiles ?? defaultAuthFiles(), registry, repository);
      this.credCache.set(key, p);
    }
    return p;
  }
}
