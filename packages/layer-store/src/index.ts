export type * from "./types.js";
export { mountLayerStore } from "./mount.js";
export { StoreTree } from "./store-tree.js";
export { encodeReference, decodeReference, parseStorePath, type StorePath, type LayerFile } from "./store-path.js";
export { LayerStoreError, LAYER_STORE_ERROR_CODES, type LayerStoreErrorCode } from "./errors.js";
export { addLayerStore, removeLayerStore, storeEntry, BLOCK_BEGIN, BLOCK_END, type StorageConfEdit, type StorageDefaults } from "./storage-conf.js";
export { DEFAULT_STORE_DIR, defaultStoreDir } from "./default-dir.js";
