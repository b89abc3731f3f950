import { LazypullError } from "@lazypull/errors";

export const CONVERT_ERROR_CODES = ["CONVERT_LAYER_FAILED", "CONVERT_BAD_SOURCE"] as const;
export type ConvertErrorCode = (typeof CONVERT_ERROR_CODES)[number];

export class ConvertError extends LazypullError<ConvertErrorCode> {}
