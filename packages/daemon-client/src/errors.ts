import { LazypullError } from "@lazypull/errors";

/** The client's own codes; any other code on a `DaemonClientError` is the daemon's, passed through. */
export const DAEMON_CLIENT_ERROR_CODES = ["DAEMON_UNAVAILABLE", "DAEMON_BAD_RESPONSE"] as const;
export type DaemonClientErrorCode = (typeof DAEMON_CLIENT_ERROR_CODES)[number];

/**
 * An error from talking to lazypulld. `DAEMON_UNAVAILABLE` when nothing answers on the socket,
 * `DAEMON_BAD_RESPONSE` when the answer is not the API's; otherwise the daemon's own `code`
 * (e.g. `DAEMON_BAD_REQUEST`, `DAEMON_IMAGE_NOT_FOUND`, `REGISTRY_NOT_FOUND`) with the HTTP status in `context`.
 */
export class DaemonClientError extends LazypullError<DaemonClientErrorCode | (string & {})> {}
