import { LazypullError, type ErrorContext } from "@lazypull/errors";

/**
 * An error from talking to lazypulld. `DAEMON_UNAVAILABLE` when nothing answers on the socket,
 * `DAEMON_BAD_RESPONSE` when the answer is not the API's; otherwise the daemon's own `code`
 * (e.g. `DAEMON_BAD_REQUEST`, `DAEMON_IMAGE_NOT_FOUND`, `REGISTRY_MANIFEST_UNKNOWN`) with the HTTP status in `context`.
 */
export class DaemonClientError extends LazypullError {
  constructor(code: string, message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(code, message, context, options);
  }
}
