export {
  convertImage,
  type ConvertImageOptions,
  type ConvertImageResult,
  type ConvertedLayer,
  type LayerPhase,
  type LayerProgressEvent,
} from "./convert-image.js";
export { ConvertError, CONVERT_ERROR_CODES, type ConvertErrorCode } from "./errors.js";
