import { LazypullError, type ErrorContext } from "@lazypull/errors";

/** Stable codes raised by fuse-fs; the FUSE adapters map them to errno in `operations/errno.ts`. */
export type FuseFsErrorCode =
  | "FUSEFS_NOT_FOUND"
  | "FUSEFS_NOT_DIR"
  | "FUSEFS_IS_DIR"
  | "FUSEFS_READ_ONLY"
  | "FUSEFS_NO_XATTR"
  | "FUSEFS_INVALID"
  | "FUSEFS_BAD_HANDLE"
  | "FUSEFS_FETCH_FAILED"
  | "FUSEFS_UNVERIFIED_LAYER"
  | "FUSEFS_BAD_LAYER"
  | "FUSEFS_BAD_CHUNK"
  | "FUSEFS_CHUNK_TOO_LARGE"
  | "FUSEFS_UNSUPPORTED_COMPRESSION"
  | "FUSEFS_LAYER_GONE"
  | "FUSEFS_MOUNTPOINT_BUSY"
  | "FUSEFS_MOUNT_FAILED"
  | "FUSEFS_CLOSED";

export class FuseFsError extends LazypullError {
  declare readonly code: FuseFsErrorCode;
  constructor(code: FuseFsErrorCode, message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(code, message, context, options);
  }
}
