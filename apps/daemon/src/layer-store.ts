import { randomUUID } from "node:crypto";
import { readFile, rename, writeFile } from "node:fs/promises";
import type { Logger } from "pino";
import type { LazyFs } from "@lazypull/fuse-fs";
import { loadPredictorFor } from "@lazypull/image";
import type { StoreBackend, StoreLayer } from "@lazypull/layer-store";
import { parseReference, type ContentCache, type RegistryClient } from "@lazypull/registry-client";
import { TOC_DIGEST_ANNOTATION, UNCOMPRESSED_SIZE_ANNOTATION } from "@lazypull/stargz-format";
import { DaemonError } from "./errors.js";
import type { LoadFollowers } from "./load-followers.js";

/** containers/storage's archive.Compression for gzip, which every eStargz blob is */
const GZIP = 2;
/** a pull looks every layer of one image up within seconds: resolve the reference once for all of them */
const RESOLVE_TTL_MS = 30_000;
/** images whose start was predicted, remembered so a pull predicts once (the oldest are forgotten) */
const MAX_PREDICTED = 1024;

type Resolved = Awaited<ReturnType<RegistryClient["resolve"]>>;

interface Entry {
  reference: string;
  /** the digest podman looked the layer up by: its blob digest, or its TOC digest (containers/storage 1.54+) */
  digest: string;
  /** the blob digest: the LazyFs layer this entry holds one reference to, once `ready` has a layer */
  blobDigest?: string;
  ready: Promise<StoreLayer | undefined>;
  touched: number;
}

export interface StoreLayerStatus {
  reference: string;
  digest: string;
  blobDigest: string;
  /** podman's references to it: layers it made from this one (a pull in progress counts too) */
  uses: number;
}

const keyOf = (reference: string, digest: string) => `${reference}\n${digest}`;

/**
 * lazypulld's side of podman's Additional Layer Store: turns a lookup of (image reference, layer
 * digest) into a layer served on the daemon's LazyFs, and counts podman's use/release notifications.
 * The counts are kept on disk (`usesFile`) so a restarted daemon knows which layers podman still
 * holds and never lets those go; a layer nobody uses is released after `idleMs` without lookups.
 */
export class StoreLayers implements StoreBackend {
  private readonly entries = new Map<string, Entry>();
  private readonly resolved = new Map<string, { at: number; image: Promise<Resolved> }>();
  private readonly uses = new Map<string, number>();
  /** images whose start was predicted: their layers, and how to stop their predictor hearing about opened files */
  private readonly predicted = new Map<string, { digests: string[]; unfollow: () => void }>();
  private saving: Promise<void> = Promise.resolve();
  private readonly sweeper: NodeJS.Timeout;

  private constructor(
    private readonly fs: LazyFs,
    private readonly client: RegistryClient,
    private readonly log: Logger,
    private readonly usesFile: string,
    private readonly idleMs: number,
    private readonly cache: ContentCache | undefined,
    private readonly followers: LoadFollowers | undefined,
  ) {
    this.sweeper = setInterval(() => this.sweep(), Math.max(1000, Math.min(idleMs, 30_000)));
    this.sweeper.unref();
  }

  /** `cache`: where manifests by digest and configs are kept (a warm host resolves with one request) */
  static async open(opts: { fs: LazyFs; client: RegistryClient; log: Logger; usesFile: string; idleMs: number; cache?: ContentCache; followers?: LoadFollowers }): Promise<StoreLayers> {
    const store = new StoreLayers(opts.fs, opts.client, opts.log, opts.usesFile, opts.idleMs, opts.cache, opts.followers);
    await store.load();
    return store;
  }

  lookup(reference: string, digest: string): Promise<StoreLayer | undefined> {
    const key = keyOf(reference, digest);
    const existing = this.entries.get(key);
    if (existing) {
      existing.touched = Date.now();
      return existing.ready;
    }
    const entry: Entry = { reference, digest, touched: Date.now(), ready: Promise.resolve(undefined) };
    entry.ready = this.serve(entry).then(
      (layer) => {
        if (!layer && this.entries.get(key) === entry) this.entries.delete(key);
        return layer;
      },
      (err: unknown) => {
        if (this.entries.get(key) === entry) this.entries.delete(key);
        throw err;
      },
    );
    this.entries.set(key, entry);
    return entry.ready;
  }

  use(reference: string, digest: string): void {
    this.count(reference, digest, +1);
  }

  release(reference: string, digest: string): void {
    this.count(reference, digest, -1);
  }

  known(): Array<{ reference: string; digests: string[] }> {
    const byRef = new Map<string, string[]>();
    for (const e of this.entries.values()) {
      if (e.blobDigest === undefined) continue;
      byRef.set(e.reference, [...(byRef.get(e.reference) ?? []), e.digest]);
    }
    return [...byRef].map(([reference, digests]) => ({ reference, digests }));
  }

  status(): StoreLayerStatus[] {
    return [...this.entries.values()]
      .filter((e): e is Entry & { blobDigest: string } => e.blobDigest !== undefined)
      .map((e) => ({ reference: e.reference, digest: e.digest, blobDigest: e.blobDigest, uses: this.uses.get(keyOf(e.reference, e.digest)) ?? 0 }));
  }

  /** Lets every layer go (shutdown); the use counts stay on disk for the next start. */
  async close(): Promise<void> {
    clearInterval(this.sweeper);
    for (const [key, e] of this.entries) this.drop(key, e);
    await this.saving;
  }

  private async serve(entry: Entry): Promise<StoreLayer | undefined> {
    const { reference, digest } = entry;
    const image = await this.resolve(reference);
    const index = image.manifest.layers.findIndex((d) => d.digest === digest || d.annotations?.[TOC_DIGEST_ANNOTATION] === digest);
    const descriptor = image.manifest.layers[index];
    const skip = (why: string) => {
      this.log.info({ reference, digest, why }, "layer store: not serving this layer; podman pulls it");
      return undefined;
    };
    if (!descriptor) return skip("not a layer of the image");
    if (!descriptor.annotations?.[TOC_DIGEST_ANNOTATION]) return skip("not an eStargz layer (no TOC digest annotation)");
    if (!/gzip/.test(descriptor.mediaType)) return skip(`media type ${descriptor.mediaType} is not gzip`);
    const diffSize = Number(descriptor.annotations[UNCOMPRESSED_SIZE_ANNOTATION]);
    if (!Number.isSafeInteger(diffSize) || diffSize < 0) return skip(`no valid ${UNCOMPRESSED_SIZE_ANNOTATION} annotation`);
    const diffId = image.config.rootfs?.diff_ids?.[index];
    if (typeof diffId !== "string") return skip(`the config has no diff_id for layer ${index}`);
    const dirs = await this.fs.addLayer({ ref: image.ref, descriptor });
    if (this.entries.get(keyOf(reference, digest)) !== entry) {
      // dropped while it was opening (shutdown)
      this.fs.releaseLayer(descriptor.digest);
      return undefined;
    }
    entry.blobDigest = descriptor.digest;
    this.log.info({ reference, digest, blobDigest: descriptor.digest }, "layer store: serving layer");
    this.predictStart(reference, image);
    return {
      diffDir: dirs.overlayDir,
      info: {
        "compressed-diff-digest": descriptor.digest,
        "compressed-size": descriptor.size,
        "diff-digest": diffId,
        "diff-size": diffSize,
        compression: GZIP,
      },
      readBlob: (offset, length) => this.client.fetchRange(image.ref, descriptor.digest, { offset, length }),
    };
  }

  /**
   * Once every layer of the image is served, fetch what a start of it reads first. podman does not say
   * which command it will run, so the image's own Entrypoint and Cmd are predicted (plus the files
   * every start reads); an image with a layer podman pulls itself is not predicted.
   */
  private predictStart(reference: string, image: Resolved): void {
    const key = `${reference}@${image.manifestDigest}`;
    if (this.predicted.has(key)) return;
    if (!image.manifest.layers.every((d) => this.fs.layerTree(d.digest) !== undefined)) return;
    const predictor = loadPredictorFor(this.fs, image.manifest.layers, image.config);
    if (!predictor) return;
    if (this.predicted.size >= MAX_PREDICTED) {
      const [oldest, p] = this.predicted.entries().next().value!;
      p.unfollow();
      this.predicted.delete(oldest);
    }
    const digests = image.manifest.layers.map((d) => d.digest);
    this.predicted.set(key, { digests, unfollow: this.followers?.add(digests, predictor) ?? (() => undefined) });
    void predictor.start().then(
      (p) => this.log.info({ reference, files: p.files.length, bytes: p.bytes, program: p.program }, "layer store: start files prefetched"),
      () => undefined,
    );
  }

  private resolve(reference: string): Promise<Resolved> {
    const hit = this.resolved.get(reference);
    if (hit && Date.now() - hit.at < RESOLVE_TTL_MS) return hit.image;
    const image = this.client.resolve(parseReference(reference), this.cache ? { cache: this.cache } : {});
    this.resolved.set(reference, { at: Date.now(), image });
    image.catch(() => this.resolved.get(reference)?.image === image && this.resolved.delete(reference));
    return image;
  }

  private count(reference: string, digest: string, delta: 1 | -1): void {
    const key = keyOf(reference, digest);
    // below zero only after a lost count (a daemon killed before it saved); never keep a debt
    const n = Math.max(0, (this.uses.get(key) ?? 0) + delta);
    if (n === 0) this.uses.delete(key);
    else this.uses.set(key, n);
    const e = this.entries.get(key);
    if (e) e.touched = Date.now();
    this.log.info({ reference, digest, uses: n }, delta > 0 ? "layer store: podman uses layer" : "layer store: podman released layer");
    this.save();
  }

  private sweep(): void {
    const now = Date.now();
    for (const [key, e] of this.entries) {
      if (e.blobDigest !== undefined && !this.uses.has(key) && now - e.touched >= this.idleMs) {
        this.log.info({ reference: e.reference, digest: e.digest }, "layer store: letting an unused layer go");
        this.drop(key, e);
      }
    }
    for (const [ref, r] of this.resolved) if (now - r.at >= RESOLVE_TTL_MS) this.resolved.delete(ref);
  }

  private drop(key: string, e: Entry): void {
    this.entries.delete(key);
    if (e.blobDigest === undefined) return;
    this.fs.releaseLayer(e.blobDigest);
    // an image predicted over this layer is predicted afresh when it is served again: the old predictor
    // reads through a closed layer and holds its tree
    for (const [image, p] of this.predicted) {
      if (p.digests.includes(e.blobDigest)) {
        p.unfollow();
        this.predicted.delete(image);
      }
    }
  }

  private async load(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.usesFile, "utf8");
    } catch {
      return;
    }
    try {
      const saved = JSON.parse(text) as unknown;
      if (!Array.isArray(saved)) throw new DaemonError("DAEMON_BAD_CONFIG", `${this.usesFile} is not a JSON array`, { file: this.usesFile });
      for (const item of saved) {
        const { reference, digest, uses } = item as { reference?: unknown; digest?: unknown; uses?: unknown };
        if (typeof reference === "string" && typeof digest === "string" && Number.isSafeInteger(uses) && (uses as number) > 0) {
          this.uses.set(keyOf(reference, digest), uses as number);
        }
      }
      this.log.info({ layers: this.uses.size, file: this.usesFile }, "layer store: restored podman's use counts");
    } catch (err) {
      // a torn file loses only counts: those layers are served again on lookup, and may be let go early
      this.log.error({ err, file: this.usesFile }, "layer store: ignoring an unreadable use-count file");
    }
  }

  /** Writes the counts atomically, one write at a time, the last state winning. */
  private save(): void {
    const snapshot = [...this.uses].map(([key, uses]) => {
      const [reference, digest] = key.split("\n") as [string, string];
      return { reference, digest, uses };
    });
    this.saving = this.saving.then(async () => {
      const tmp = `${this.usesFile}.${randomUUID()}.tmp`;
      try {
        await writeFile(tmp, JSON.stringify(snapshot));
        await rename(tmp, this.usesFile);
      } catch (err) {
        this.log.error({ err, file: this.usesFile }, "layer store: could not save use counts");
      }
    });
  }
}
