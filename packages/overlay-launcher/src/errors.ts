import { LazypullError } from "@lazypull/errors";

export const HOST_CONFIG_ERROR_CODES = ["LAUNCH_CONFIG_UNREADABLE", "LAUNCH_CONFIG_INVALID"] as const;
export type HostConfigErrorCode = (typeof HOST_CONFIG_ERROR_CODES)[number];

/** The host configuration file is unreadable or invalid. */
export class HostConfigError extends LazypullError<HostConfigErrorCode> {}

export const OVERLAY_ERROR_CODES = [
  "OVERLAY_NO_LOWER",
  "OVERLAY_BAD_PATH",
  "OVERLAY_MOUNT_FAILED",
  "OVERLAY_MOUNT_TIMEOUT",
  "OVERLAY_UNMOUNT_FAILED",
  "OVERLAY_TARGET_BUSY",
  "OVERLAY_NOT_MOUNTED",
  "OVERLAY_KERNEL_UNAVAILABLE",
  "OVERLAY_TOO_MANY_LAYERS",
] as const;
export type OverlayErrorCode = (typeof OVERLAY_ERROR_CODES)[number];

/** Mounting or unmounting an overlay (kernel or fuse-overlayfs) or a recorded FUSE mount failed. */
export class OverlayError extends LazypullError<OverlayErrorCode> {}

export const LAUNCH_ERROR_CODES = ["LAUNCH_BAD_OPTION", "LAUNCH_NO_COMMAND", "LAUNCH_BINARY_NOT_FOUND", "LAUNCH_SPAWN_FAILED"] as const;
export type LaunchErrorCode = (typeof LAUNCH_ERROR_CODES)[number];

/** The container cannot be started as asked (bad run options, no command, podman missing). */
export class LaunchError extends LazypullError<LaunchErrorCode> {}
