import { LazypullError, type ErrorContext } from "@lazypull/errors";

export type ConvertErrorCode = "CONVERT_LAYER_FAILED" | "CONVERT_BAD_SOURCE" | "CONVERT_ABORTED";

export class ConvertError extends LazypullError {
  declare readonly code: ConvertErrorCode;
  constructor(code: ConvertErrorCode, message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(code, message, context, options);
  }
}
