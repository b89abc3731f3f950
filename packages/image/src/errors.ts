import { LazypullError } from "@lazypull/errors";

/** Stable codes for paths inside an image (or a single layer's tree). */
export const IMAGE_ERROR_CODES = ["IMAGE_PATH_NOT_FOUND", "IMAGE_NOT_A_FILE", "IMAGE_SYMLINK_LOOP"] as const;
export type ImageErrorCode = (typeof IMAGE_ERROR_CODES)[number];

export class ImageError extends LazypullError<ImageErrorCode> {}
