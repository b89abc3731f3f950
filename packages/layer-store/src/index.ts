export type * from "./types.js";
export { mountLayerStore } from "./mount.js";
export { StoreTree } from "./store-tree.js";
export { encodeReference, decodeReference, parseStorePath, type StorePath, type LayerFile } from "./store-path.js";
export { LayerStoreError, type LayerStoreErrorCode } from "./errors.js";
