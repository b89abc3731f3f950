import { LazypullError } from "@lazypull/errors";

/**
 * Stable codes raised by the layer store; `operations.ts` maps them to errno. NOT_FOUND: the path
 * names nothing the store serves (podman then pulls the layer itself); READ_ONLY: a write other than
 * podman's use/release notifications; STORAGE_CONF_CONFLICT: storage.conf already lists other
 * Additional Layer Stores (setup does not rewrite a list it did not write).
 */
export const LAYER_STORE_ERROR_CODES = [
  "LAYER_STORE_NOT_FOUND",
  "LAYER_STORE_READ_ONLY",
  "LAYER_STORE_BAD_HANDLE",
  "LAYER_STORE_MOUNTPOINT_BUSY",
  "LAYER_STORE_MOUNT_FAILED",
  "STORAGE_CONF_CONFLICT",
] as const;
export type LayerStoreErrorCode = (typeof LAYER_STORE_ERROR_CODES)[number];

export class LayerStoreError extends LazypullError<LayerStoreErrorCode> {}
