export { loadHostConfig, resolveHostConfig, parseHostConfigFile, hostConfigFileSchema, type HostConfig, type HostConfigFile } from "./config.js";
export { DEFAULTS, DEFAULT_CONFIG_PATH, CONFIG_PATH_ENV, defaultStateRoot, type OverlayPreference } from "./defaults.js";
export { HostConfigError, OverlayError, LaunchError, HOST_CONFIG_ERROR_CODES, OVERLAY_ERROR_CODES, LAUNCH_ERROR_CODES, type HostConfigErrorCode, type OverlayErrorCode, type LaunchErrorCode } from "./errors.js";
export { clampUlimits, parseProcLimits, parseUlimit, readHostLimits, ulimitArgs, type Ulimit, type ClampedUlimit, type HostLimits } from "./ulimits.js";
export { unmountPath, unmountFuse, type UnmountResult } from "./unmount.js";
export { mountOverlay, type MountOverlayOptions, type OverlayMount, type OverlayKind } from "./overlay.js";
export { mountKernelOverlay, kernelOverlayOptionString, KERNEL_OVERLAY_OPTIONS, KERNEL_MAX_LOWERS } from "./kernel-overlay.js";
export { buildPodmanArgs, containerArgv, mergeEnv, type RunOptions, type PodmanArgsInput } from "./podman-args.js";
export { runContainer, type RunContainerOptions, type RunContainerResult } from "./run-container.js";
export { childCommand, inheritableFds, withoutFds } from "./child-fds.js";
export { removeContainer, type RemoveContainerResult } from "./remove-container.js";
export {
  CleanupStack,
  processCleanup,
  hookProcessSignals,
  interceptSignals,
  HOOKED_SIGNALS,
  type CleanupHandle,
  type CleanupOutcome,
  type SignalInterceptor,
} from "./cleanup-stack.js";
export {
  createState,
  readState,
  cleanupLeftovers,
  isOwnerAlive,
  mountKey,
  StateDir,
  type StateRecord,
  type RecordedMount,
  type CleanupReport,
  type StateKind,
} from "./state.js";
export { launchContainer, mountImageRoot, unmountImageRoot, effectiveUlimits, type LaunchOptions, type LaunchResult, type ImageRootMount } from "./launch.js";
