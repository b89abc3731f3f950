// The package's one error type and its stable codes: callers branch on `code`, never on messages.
import { LazypullError } from "@lazypull/errors";

/**
 * Stable codes raised by the registry client; callers branch on these, never on messages.
 * IMAGE_CONFIG_INVALID: an image config that is JSON but not of the OCI image spec's shape (the field
 * is in the context).
 */
export const REGISTRY_ERROR_CODES = [
  "REGISTRY_UNAUTHORIZED",
  "REGISTRY_DENIED",
  "REGISTRY_NOT_FOUND",
  "REGISTRY_RANGE_UNSUPPORTED",
  "REGISTRY_RANGE_NOT_SATISFIABLE",
  "REGISTRY_BAD_RESPONSE",
  "REGISTRY_UNAVAILABLE",
  "REGISTRY_SCHEMA1_UNSUPPORTED",
  "REGISTRY_NO_MATCHING_PLATFORM",
  "REGISTRY_AUTH_CONFIG_INVALID",
  "REGISTRY_CREDENTIAL_HELPER_MISSING",
  "REGISTRY_CREDENTIAL_HELPER_FAILED",
  "REGISTRY_CONFIG_INVALID",
  "REGISTRY_BLOCKED",
  "REGISTRY_TLS_CONFIG_INVALID",
  "REGISTRY_TLS_UNKNOWN_AUTHORITY",
  "REGISTRY_TLS_NAME_MISMATCH",
  "REGISTRY_TLS_EXPIRED",
  "REGISTRY_TLS_FAILED",
  "IMAGE_CONFIG_INVALID",
  "DIGEST_MISMATCH",
  "DIGEST_INVALID",
  "REFERENCE_INVALID",
  "REFERENCE_AMBIGUOUS",
] as const;
export type RegistryErrorCode = (typeof REGISTRY_ERROR_CODES)[number];

export interface RegistryErrorContext {
  registry?: string;
  repository?: string;
  digest?: string;
  /** HTTP status of the response that caused the error, when there was one */
  status?: number;
  /** the registry's own error codes from its JSON error body (e.g. `MANIFEST_UNKNOWN`) */
  registryErrors?: string[];
  [k: string]: unknown;
}

export class RegistryError extends LazypullError<RegistryErrorCode> {
  declare readonly context: RegistryErrorContext;

  constructor(code: RegistryErrorCode, message: string, context: RegistryErrorContext = {}, options?: { cause?: unknown }) {
    super(code, message, context, options);
  }
}
