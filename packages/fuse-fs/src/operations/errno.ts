import { hasCode } from "@lazypull/errors";
import type { FuseFsErrorCode } from "../errors.js";

/** Negative errno values as the kernel (and fuse-native) expect them on Linux. */
export const Errno = {
  EPERM: -1,
  ENOENT: -2,
  EIO: -5,
  EBADF: -9,
  EACCES: -13,
  EFBIG: -27,
  ENOTDIR: -20,
  EISDIR: -21,
  EINVAL: -22,
  EROFS: -30,
  ERANGE: -34,
  ENOSYS: -38,
  ENODATA: -61,
} as const;

const byCode: { readonly [C in FuseFsErrorCode]?: number } = {
  FUSEFS_NOT_FOUND: Errno.ENOENT,
  FUSEFS_LAYER_GONE: Errno.ENOENT,
  FUSEFS_NOT_DIR: Errno.ENOTDIR,
  FUSEFS_IS_DIR: Errno.EISDIR,
  FUSEFS_READ_ONLY: Errno.EROFS,
  FUSEFS_NO_XATTR: Errno.ENODATA,
  FUSEFS_INVALID: Errno.EINVAL,
  FUSEFS_CHUNK_TOO_LARGE: Errno.EFBIG,
};

/** Typed errors become their errno; anything else (network, digest mismatch, bugs) is EIO. */
export function toErrno(err: unknown): number {
  if (hasCode(err)) return byCode[err.code as FuseFsErrorCode] ?? Errno.EIO;
  return Errno.EIO;
}
