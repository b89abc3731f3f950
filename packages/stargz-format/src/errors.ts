import { LazypullError } from "@lazypull/errors";

/**
 * Stable codes raised by this package. Callers (fuse-fs, the CLI) branch on these, never on messages.
 * ESTARGZ_* concern blobs and TOCs, TAR_* the tar layer, CONVERT_* the converter's input.
 */
export const STARGZ_ERROR_CODES = [
  "ESTARGZ_TRUNCATED",
  "ESTARGZ_BAD_FOOTER",
  "ESTARGZ_BAD_TOC",
  "ESTARGZ_TOC_TOO_LARGE",
  "ESTARGZ_TOC_DIGEST_MISMATCH",
  "ESTARGZ_BAD_TOC_LOCATION",
  "ESTARGZ_UNSAFE_NAME",
  "ESTARGZ_BAD_ENTRY",
  "ESTARGZ_BAD_OFFSET",
  "ESTARGZ_BAD_SIZE",
  "ESTARGZ_DUPLICATE_ENTRY",
  "ESTARGZ_BAD_HARDLINK",
  "ESTARGZ_HARDLINK_CYCLE",
  "ESTARGZ_CHUNK_CORRUPT",
  "ESTARGZ_CHUNK_SIZE_MISMATCH",
  "ESTARGZ_CHUNK_DIGEST_MISMATCH",
  "ESTARGZ_CHUNK_TOO_LARGE",
  "ESTARGZ_NOT_FOUND",
  "ESTARGZ_NOT_A_FILE",
  "TAR_BAD_HEADER",
  "TAR_TRUNCATED",
  "TAR_UNSUPPORTED_ENTRY",
  "TAR_BAD_PAX",
  "CONVERT_BAD_INPUT",
  "CONVERT_BAD_OPTION",
] as const;
export type StargzErrorCode = (typeof STARGZ_ERROR_CODES)[number];

/** Everything wrong with a blob, a TOC or a tar. `context` names the layer (`label`), entry, offset… */
export class StargzError extends LazypullError<StargzErrorCode> {}

/** Prefix for messages that concern one layer: "layer sha256:…: ". */
export function where(label: string | undefined): string {
  return label ? `${label}: ` : "";
}
