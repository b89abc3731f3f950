import { LazypullError, type ErrorContext } from "@lazypull/errors";

/** Stable codes for paths inside an image (or a single layer's tree). */
export type ImageErrorCode = "IMAGE_PATH_NOT_FOUND" | "IMAGE_NOT_A_FILE" | "IMAGE_SYMLINK_LOOP";

export class ImageError extends LazypullError {
  declare readonly code: ImageErrorCode;
  constructor(code: ImageErrorCode, message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(code, message, context, options);
  }
}
