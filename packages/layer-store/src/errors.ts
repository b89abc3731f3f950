import { LazypullError, type ErrorContext } from "@lazypull/errors";

/** Stable codes raised by the layer store; `operations.ts` maps them to errno. */
export type LayerStoreErrorCode =
  /** the path names nothing the store serves (podman then pulls the layer itself) */
  | "LAYER_STORE_NOT_FOUND"
  /** a write other than podman's use/release notifications */
  | "LAYER_STORE_READ_ONLY"
  | "LAYER_STORE_BAD_HANDLE"
  | "LAYER_STORE_MOUNTPOINT_BUSY"
  | "LAYER_STORE_MOUNT_FAILED"
  /** storage.conf already lists other Additional Layer Stores: setup does not rewrite a list it did not write */
  | "STORAGE_CONF_CONFLICT";

export class LayerStoreError extends LazypullError {
  declare readonly code: LayerStoreErrorCode;
  constructor(code: LayerStoreErrorCode, message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(code, message, context, options);
  }
}
