export { ImageView, type LayerTree } from "./merged-view.js";
export { resolveSymlinks, regularFile, MAX_SYMLINK_HOPS } from "./resolve-path.js";
export { addImageLayers, lowerDirsOf, type ImageLayers } from "./image-layers.js";
export { normalizePath } from "./paths.js";
export { ImageError, IMAGE_ERROR_CODES, type ImageErrorCode } from "./errors.js";
