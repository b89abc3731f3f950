/// <reference path="./fuse-native.d.ts" />
export type * from "./types.js";
export { mountLazyFs, loadFuseNative, layerDirs } from "./lazy-fs.js";
export { openRemoteLayer } from "./remote-layer.js";
export { prefetchToc } from "./layer/open-layer.js";
export { cleanStaleMount } from "./stale-mount.js";
export { unmountOnSignals } from "./signals.js";
export { readOnlyOps } from "./operations/read-only.js";
export { FuseFsError, FUSEFS_ERROR_CODES, type FuseFsErrorCode } from "./errors.js";
export { FetchBudget, DEFAULT_FETCH_BUDGET_BYTES } from "./layer/fetch-budget.js";
export { LARGE_CHUNK_BYTES } from "./layer/large-chunk.js";
