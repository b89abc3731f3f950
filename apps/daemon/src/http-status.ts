import { hasCode } from "@lazypull/errors";
import type { FuseFsErrorCode } from "@lazypull/fuse-fs";
import type { ImageErrorCode } from "@lazypull/image";
import type { RegistryErrorCode } from "@lazypull/registry-client";
import type { DaemonErrorCode } from "./errors.js";

/** The codes a request handler can meet: the daemon's own and those of the packages it calls. */
type HandlerCode = DaemonErrorCode | RegistryErrorCode | FuseFsErrorCode | ImageErrorCode;

/**
 * HTTP status by error code. Typed by the packages' code unions: a code that no package declares (a
 * typo, a code since removed) does not compile. What is not here is 502 for the registry's (an
 * upstream failure) and 500 for the rest.
 */
const STATUS: { readonly [C in HandlerCode]?: 400 | 403 | 404 | 422 | 503 } = {
  DAEMON_BAD_REQUEST: 400,
  REFERENCE_INVALID: 400,
  DIGEST_INVALID: 400,
  REGISTRY_NO_MATCHING_PLATFORM: 400,
  REGISTRY_UNAUTHORIZED: 403,
  REGISTRY_DENIED: 403,
  DAEMON_NOT_FOUND: 404,
  DAEMON_IMAGE_NOT_FOUND: 404,
  REGISTRY_NOT_FOUND: 404,
  FUSEFS_BAD_LAYER: 422,
  FUSEFS_UNSUPPORTED_COMPRESSION: 422,
  REGISTRY_SCHEMA1_UNSUPPORTED: 422,
  IMAGE_CONFIG_INVALID: 422,
  DAEMON_SHUTTING_DOWN: 503,
};

/** HTTP status for an error a handler threw. */
export function statusFor(err: unknown): number {
  if (!hasCode(err)) return 500;
  const status = STATUS[err.code as HandlerCode];
  if (status) return status;
  return err.code.startsWith("REGISTRY_") || err.code === "DIGEST_MISMATCH" ? 502 : 500;
}
