export { ImageView, type LayerTree } from "./merged-view.js";
export { resolveSymlinks, regularFile, MAX_SYMLINK_HOPS } from "./resolve-path.js";
export { addImageLayers, resolveAndAddLayers, resolveAndStartLayers, lowerDirsOf, loadPredictorFor, type ImageLayers } from "./image-layers.js";
export { normalizePath } from "./paths.js";
export { ImageError, IMAGE_ERROR_CODES, type ImageErrorCode } from "./errors.js";
export { prefetchStart, LoadPredictor, startArgv, START_FILES, type StartCommand, type StartPrediction, type PredictOptions } from "./predict/start-files.js";
export { readElfDeps, type ElfDeps } from "./predict/elf.js";
export { parseLdCache } from "./predict/ld-cache.js";
