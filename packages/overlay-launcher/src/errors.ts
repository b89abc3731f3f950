import { LazypullError, type ErrorContext } from "@lazypull/errors";

/** The host configuration file is unreadable or invalid (`LAUNCH_CONFIG_UNREADABLE`, `LAUNCH_CONFIG_INVALID`). */
export class HostConfigError extends LazypullError {
  constructor(code: "LAUNCH_CONFIG_UNREADABLE" | "LAUNCH_CONFIG_INVALID", message: string, context: ErrorContext, options?: { cause?: unknown }) {
    super(code, message, context, options);
  }
}

export type OverlayErrorCode =
  | "OVERLAY_NO_LOWER"
  | "OVERLAY_BAD_PATH"
  | "OVERLAY_MOUNT_FAILED"
  | "OVERLAY_MOUNT_TIMEOUT"
  | "OVERLAY_UNMOUNT_FAILED"
  | "OVERLAY_TARGET_BUSY"
  | "OVERLAY_NOT_MOUNTED"
  | "OVERLAY_KERNEL_UNAVAILABLE"
  | "OVERLAY_TOO_MANY_LAYERS";

/** Mounting or unmounting an overlay (kernel or fuse-overlayfs) or a recorded FUSE mount failed. */
export class OverlayError extends LazypullError {
  constructor(code: OverlayErrorCode, message: string, context: ErrorContext, options?: { cause?: unknown }) {
    super(code, message, context, options);
  }
}

export type LaunchErrorCode = "LAUNCH_BAD_OPTION" | "LAUNCH_NO_COMMAND" | "LAUNCH_BINARY_NOT_FOUND" | "LAUNCH_SPAWN_FAILED";

/** The container cannot be started as asked (bad run options, no command, podman missing). */
export class LaunchError extends LazypullError {
  constructor(code: LaunchErrorCode, message: string, context: ErrorContext, options?: { cause?: unknown }) {
    super(code, message, context, options);
  }
}
