import { LazypullError } from "@lazypull/errors";

export const DAEMON_ERROR_CODES = [
  "DAEMON_BAD_CONFIG",
  "DAEMON_BAD_REQUEST",
  "DAEMON_NOT_FOUND",
  "DAEMON_IMAGE_NOT_FOUND",
  "DAEMON_ALREADY_RUNNING",
  "DAEMON_SHUTTING_DOWN",
  "DAEMON_INTERNAL",
  "DAEMON_ROOTLESS_NO_PODMAN",
  "DAEMON_ROOTLESS_NO_SUBIDS",
  "DAEMON_ROOTLESS_NO_FUSE_DEVICE",
  "DAEMON_ROOTLESS_NO_FUSERMOUNT",
] as const;
export type DaemonErrorCode = (typeof DAEMON_ERROR_CODES)[number];

export class DaemonError extends LazypullError<DaemonErrorCode> {}
