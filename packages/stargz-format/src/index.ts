export type * from "./types.js";
export {
  TOC_DIGEST_ANNOTATION,
  UNCOMPRESSED_SIZE_ANNOTATION,
  TOC_OFFSET_ANNOTATION,
  TOC_LENGTH_ANNOTATION,
  FOOTER_SIZE_ANNOTATION,
  checkTocLocation,
  tocLocationAnnotations,
  tocLocationFromAnnotations,
  type TocLocation,
} from "./annotations.js";
export { StargzError, STARGZ_ERROR_CODES, type StargzErrorCode } from "./errors.js";
export { inflateVerified } from "./inflate-verified.js";
export { openStargz, SPECULATIVE_TAIL, DEFAULT_MAX_CHUNK_BYTES } from "./reader.js";
export { convertToEstargz, DEFAULT_CHUNK_SIZE, STREAM_MEMBER_BYTES, type ConvertResultDetail } from "./writer.js";
export { fileRangeReader } from "./file-range-reader.js";
export {
  estargzFooter,
  legacyStargzFooter,
  parseFooter,
  ESTARGZ_FOOTER_SIZE,
  LEGACY_FOOTER_SIZE,
  type ParsedFooter,
} from "./footer.js";
export {
  normalizeName,
  serializeToc,
  sha256,
  TOC_TAR_NAME,
  PREFETCH_LANDMARK,
  NO_PREFETCH_LANDMARK,
  LANDMARK_CONTENTS,
} from "./toc.js";
export { readTar, type TarEntry, type ReadTarOptions, type UnsupportedTarEntry } from "./tar/reader.js";
export { encodeHeader, emptyHeader, isPaxSparse, padding, END_OF_ARCHIVE, type TarHeader, type TarEntryType } from "./tar/header.js";
export { StreamByteSource, FileByteSource, type ByteSource } from "./byte-source.js";
export { decompressedTar, detectKind, type InputKind } from "./input.js";
export { inflatePrefix } from "./inflate.js";
