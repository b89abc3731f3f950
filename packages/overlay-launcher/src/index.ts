// The package's public face: mount an image's layers as a root (kernel overlayfs or fuse-overlayfs),
// run podman on it, and clean up after itself and after killed predecessors. Everything else in src/
// is how; other packages should not need it (tests import the modules directly).
export { loadHostConfig, type HostConfig, type HostConfigFile } from "./config.js";
export { type OverlayPreference } from "./defaults.js";
export {
  HostConfigError,
  OverlayError,
  LaunchError,
  HOST_CONFIG_ERROR_CODES,
  OVERLAY_ERROR_CODES,
  LAUNCH_ERROR_CODES,
  type HostConfigErrorCode,
  type OverlayErrorCode,
  type LaunchErrorCode,
} from "./errors.js";
export { launchContainer, mountImageRoot, unmountImageRoot, effectiveUlimits, type LaunchOptions, type LaunchResult, type ImageRootMount } from "./launch.js";
export { type OverlayKind } from "./overlay.js";
export { ulimitArgs } from "./ulimits.js";
export { processCleanup, hookProcessSignals } from "./cleanup-stack.js";
export { createState, cleanupLeftovers, StateDir, type CleanupReport } from "./state.js";
export { warmContainerRuntime } from "./warm-runtime.js";
