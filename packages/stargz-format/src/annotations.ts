import { StargzError } from "./errors.js";
import { ESTARGZ_FOOTER_SIZE, LEGACY_FOOTER_SIZE } from "./footer.js";

/**
 * The manifest annotations that say a layer is eStargz (DESIGN.md, "Manifest annotations"): the
 * TOC's digest, which a lazy reader verifies the TOC against, and the uncompressed size, which
 * containers/storage needs to use a layer it did not unpack itself.
 */
export const TOC_DIGEST_ANNOTATION = "containerd.io/snapshot/stargz/toc.digest";
export const UNCOMPRESSED_SIZE_ANNOTATION = "io.containers.estargz.uncompressed-size";

/**
 * lazypull's own annotations (decimal byte counts) saying where the TOC member is, so a reader fetches
 * exactly `[offset, blob end)` — TOC member and footer — in one request instead of guessing a tail size.
 * They are hints, not trust: the footer and the TOC digest stay the truth (see `OpenOptions.tocLocation`).
 * Other converters do not write them; readers then guess the tail as before.
 */
export const TOC_OFFSET_ANNOTATION = "dev.lazypull.estargz.toc.offset";
/** compressed bytes of the TOC member: from the TOC offset to the footer */
export const TOC_LENGTH_ANNOTATION = "dev.lazypull.estargz.toc.length";
export const FOOTER_SIZE_ANNOTATION = "dev.lazypull.estargz.footer.size";

/** Where the TOC's gzip member is in a blob: `offset + length + footerSize` is the blob's size. */
export interface TocLocation {
  offset: number;
  /** compressed bytes of the TOC member */
  length: number;
  /** 51 (eStargz) or 47 (legacy stargz) */
  footerSize: number;
}

/** Deflate never expands by more than ~0.1% + a few bytes: a TOC member longer than this cannot inflate to ≤ maxToc bytes of TOC worth reading. */
export function maxTocMemberBytes(maxToc: number): number {
  return maxToc + (maxToc >> 8) + 4096;
}

/** The annotations that record `loc` on a layer descriptor. */
export function tocLocationAnnotations(loc: TocLocation): Record<string, string> {
  return {
    [TOC_OFFSET_ANNOTATION]: String(loc.offset),
    [TOC_LENGTH_ANNOTATION]: String(loc.length),
    [FOOTER_SIZE_ANNOTATION]: String(loc.footerSize),
  };
}

const DECIMAL = /^(0|[1-9][0-9]{0,15})$/;

/**
 * Checks that `loc` can be the TOC of a blob of `blobSize` bytes and is no bigger than a TOC of
 * `maxTocBytes` (default 64 MiB) can be; `ESTARGZ_BAD_TOC_LOCATION` naming what is wrong otherwise.
 */
export function checkTocLocation(loc: TocLocation, blobSize: number, opts: { maxTocBytes?: number; label?: string } = {}): TocLocation {
  const bad = (what: string) =>
    new StargzError("ESTARGZ_BAD_TOC_LOCATION", `${opts.label ? `${opts.label}: ` : ""}TOC location ${what}`, { label: opts.label, ...loc, blobSize });
  const { offset, length, footerSize } = loc;
  if (![offset, length, footerSize].every((v) => Number.isSafeInteger(v) && v >= 0)) throw bad("has a field that is not a non-negative integer");
  if (footerSize !== ESTARGZ_FOOTER_SIZE && footerSize !== LEGACY_FOOTER_SIZE) throw bad(`has a footer of ${footerSize} bytes (want ${ESTARGZ_FOOTER_SIZE} or ${LEGACY_FOOTER_SIZE})`);
  if (length === 0) throw bad("has an empty TOC member");
  if (offset + length + footerSize !== blobSize) throw bad(`${offset} + ${length} + ${footerSize} does not end at the blob's end (${blobSize})`);
  const max = maxTocMemberBytes(opts.maxTocBytes ?? 64 << 20);
  if (length > max) throw bad(`has a TOC member of ${length} bytes, more than a TOC of the allowed size can take (${max})`);
  return loc;
}

/**
 * The TOC location a layer descriptor's annotations record, checked against the blob's size; undefined
 * when the descriptor has none of them (another tool converted it). `ESTARGZ_BAD_TOC_LOCATION` when they
 * are there but partial, not decimal, or impossible for the blob: the caller falls back to guessing.
 */
export function tocLocationFromAnnotations(
  annotations: Record<string, string> | undefined,
  blobSize: number,
  opts: { maxTocBytes?: number; label?: string } = {},
): TocLocation | undefined {
  const raw = [TOC_OFFSET_ANNOTATION, TOC_LENGTH_ANNOTATION, FOOTER_SIZE_ANNOTATION].map((k) => annotations?.[k]);
  if (raw.every((v) => v === undefined)) return undefined;
  if (!raw.every((v) => typeof v === "string" && DECIMAL.test(v))) {
    throw new StargzError(
      "ESTARGZ_BAD_TOC_LOCATION",
      `${opts.label ? `${opts.label}: ` : ""}TOC location annotations are partial or not decimal (${JSON.stringify(raw)})`,
      { label: opts.label, blobSize },
    );
  }
  const [offset, length, footerSize] = raw.map(Number) as [number, number, number];
  return checkTocLocation({ offset, length, footerSize }, blobSize, opts);
}
