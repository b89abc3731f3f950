import { StargzError } from "./errors.js";

/** eStargz footer: an empty gzip member whose FEXTRA subfield `SG` holds `%016x`(TOC offset) + `STARGZ`. */
export const ESTARGZ_FOOTER_SIZE = 51;
/** Legacy CRFS stargz footer: same idea, the 22 extra bytes without a subfield header. */
export const LEGACY_FOOTER_SIZE = 47;

const EMPTY_STORED_BLOCK = Buffer.from([0x01, 0x00, 0x00, 0xff, 0xff]);

function offsetText(tocOffset: number): string {
  if (!Number.isSafeInteger(tocOffset) || tocOffset < 0) throw new StargzError("ESTARGZ_BAD_OFFSET", `bad TOC offset ${tocOffset}`, { tocOffset });
  return `${tocOffset.toString(16).padStart(16, "0")}STARGZ`;
}

export function estargzFooter(tocOffset: number): Buffer {
  return Buffer.concat([
    Buffer.from([0x1f, 0x8b, 0x08, 0x04, 0, 0, 0, 0, 0x00, 0xff, 0x1a, 0x00, 0x53, 0x47, 0x16, 0x00]),
    Buffer.from(offsetText(tocOffset), "latin1"),
    EMPTY_STORED_BLOCK,
    Buffer.alloc(8),
  ]);
}

export function legacyStargzFooter(tocOffset: number): Buffer {
  return Buffer.concat([
    Buffer.from([0x1f, 0x8b, 0x08, 0x04, 0, 0, 0, 0, 0x00, 0xff, 0x16, 0x00]),
    Buffer.from(offsetText(tocOffset), "latin1"),
    EMPTY_STORED_BLOCK,
    Buffer.alloc(8),
  ]);
}

function parseOffsetText(b: Buffer): number | undefined {
  const s = b.toString("latin1");
  if (!/^[0-9a-f]{16}STARGZ$/.test(s)) return undefined;
  const v = parseInt(s.slice(0, 16), 16);
  return Number.isSafeInteger(v) ? v : undefined;
}

function gzipFextraHeaderOk(b: Buffer): boolean {
  // ID1 ID2 CM=deflate FLG=FEXTRA only; MTIME/XFL/OS are not checked (writers differ)
  return b[0] === 0x1f && b[1] === 0x8b && b[2] === 0x08 && b[3] === 0x04;
}

function trailerOk(b: Buffer): boolean {
  return b.subarray(0, 5).equals(EMPTY_STORED_BLOCK) && b.subarray(5, 13).equals(Buffer.alloc(8));
}

export interface ParsedFooter {
  format: "estargz" | "stargz";
  tocOffset: number;
  footerSize: number;
}

/**
 * Find the footer at the end of `tail` (the last bytes of the blob): eStargz first, then legacy.
 * Returns undefined when neither matches.
 */
export function parseFooter(tail: Buffer): ParsedFooter | undefined {
  if (tail.length >= ESTARGZ_FOOTER_SIZE) {
    const f = tail.subarray(tail.length - ESTARGZ_FOOTER_SIZE);
    if (
      gzipFextraHeaderOk(f) &&
      f.readUInt16LE(10) === 26 &&
      f[12] === 0x53 &&
      f[13] === 0x47 &&
      f.readUInt16LE(14) === 22 &&
      trailerOk(f.subarray(38))
    ) {
      const tocOffset = parseOffsetText(f.subarray(16, 38));
      if (tocOffset !== undefined) return { format: "estargz", tocOffset, footerSize: ESTARGZ_FOOTER_SIZE };
    }
  }
  if (tail.length >= LEGACY_FOOTER_SIZE) {
    const f = tail.subarray(tail.length - LEGACY_FOOTER_SIZE);
    if (gzipFextraHeaderOk(f) && f.readUInt16LE(10) === 22 && trailerOk(f.subarray(34))) {
      const tocOffset = parseOffsetText(f.subarray(12, 34));
      if (tocOffset !== undefined) return { format: "stargz", tocOffset, footerSize: LEGACY_FOOTER_SIZE };
    }
  }
  return undefined;
}

/** Like parseFooter, but a typed error naming the blob when there is none. */
export function requireFooter(tail: Buffer, label?: string): ParsedFooter {
  const f = parseFooter(tail);
  if (!f) {
    throw new StargzError("ESTARGZ_BAD_FOOTER", `${label ? `${label}: ` : ""}no eStargz (51-byte) or stargz (47-byte) footer`, {
      label,
    });
  }
  return f;
}
