import { LazypullError } from "@lazypull/errors";

/** Stable codes raised by fuse-fs; the FUSE adapters map them to errno in `operations/errno.ts`. */
export const FUSEFS_ERROR_CODES = [
  "FUSEFS_NOT_FOUND",
  "FUSEFS_NOT_DIR",
  "FUSEFS_IS_DIR",
  "FUSEFS_READ_ONLY",
  "FUSEFS_NO_XATTR",
  "FUSEFS_INVALID",
  "FUSEFS_FETCH_FAILED",
  "FUSEFS_BAD_LAYER",
  "FUSEFS_BAD_CHUNK",
  "FUSEFS_CHUNK_TOO_LARGE",
  "FUSEFS_UNSUPPORTED_COMPRESSION",
  "FUSEFS_LAYER_GONE",
  "FUSEFS_MOUNTPOINT_BUSY",
  "FUSEFS_MOUNT_FAILED",
  "FUSEFS_UNMOUNT_FAILED",
  "FUSEFS_CLOSED",
] as const;
export type FuseFsErrorCode = (typeof FUSEFS_ERROR_CODES)[number];

export class FuseFsError extends LazypullError<FuseFsErrorCode> {}
