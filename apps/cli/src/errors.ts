import { LazypullError } from "@lazypull/errors";

/** The CLI's own codes (the packages' codes pass through as they are). */
export const CLI_ERROR_CODES = [
  "CLI_NO_SUCH_FILE",
  "CLI_NO_SUCH_BLOB",
  "CLI_DAEMON_UNAVAILABLE",
  "CLI_PODMAN_FAILED",
  "CLI_PODMAN_NOT_OVERLAY",
  "CLI_UMOUNT_FAILED",
  "CLI_ROOTLESS_NO_PODMAN",
  "CLI_ROOTLESS_NO_SUBIDS",
  "CLI_ROOTLESS_NO_FUSE_DEVICE",
  "CLI_ROOTLESS_NO_FUSERMOUNT",
] as const;
export type CliErrorCode = (typeof CLI_ERROR_CODES)[number];

export class CliError extends LazypullError<CliErrorCode> {}
