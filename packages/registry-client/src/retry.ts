// The retry policy and what counts as worth another attempt; the one loop that applies them is
// Transport.request (transport.ts), for registry calls and the token requests made on their behalf alike.
import { tlsErrorFor } from "./tls-errors.js";

export interface RetryPolicy {
  /** attempts per request, the first included (default 5) */
  maxAttempts: number;
  /** first backoff step; each retry doubles it, full jitter (default 100 ms) */
  baseDelayMs: number;
  /** longest single wait, Retry-After included (default 5 s) */
  maxDelayMs: number;
  /** give up when the next wait would end later than this after the first attempt (default 60 s) */
  maxTotalMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 5_000, maxTotalMs: 60_000 };

const RETRYABLE_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const RETRYABLE_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "ENETUNREACH",
  "EHOSTUNREACH",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_CLOSED",
]);

export function isRetryableStatus(status: number): boolean {
  return RETRYABLE_STATUS.has(status);
}

/**
 * A failure another attempt may well not meet that is not a network error: a body that ended before its own
 * framing said it would (a cut 206), or a token server's retryable answer or dropped connection. Thrown where
 * it is found; the request loop retries it within the call's one budget, and the final REGISTRY_UNAVAILABLE
 * carries it as the cause (its message says what went wrong).
 */
export class TransientError extends Error {
  /** an HTTP status behind the failure (a token server's 503), for the final error's context */
  readonly status?: number;
  /** a Retry-After that came with it */
  readonly retryAfterMs?: number;
  /**
   * the failure came from the token server, so the registry never acted on the call (it was not sent, or was
   * refused with 401): safe to repeat even for calls that are otherwise not retried (PATCH chunks)
   */
  readonly tokenServer: boolean;

  constructor(message: string, opts: { status?: number; retryAfterMs?: number; tokenServer?: boolean; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "TransientError";
    this.status = opts.status;
    this.retryAfterMs = opts.retryAfterMs;
    this.tokenServer = opts.tokenServer ?? false;
  }
}

export function isRetryableError(err: unknown): boolean {
  if (err instanceof TransientError) return true;
  // a certificate problem or a refused client certificate is the same on every attempt (TLS 1.3's refusal
  // arrives as a closed socket, which would otherwise look like a reset)
  if (tlsErrorFor(err, "") !== undefined) return false;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && RETRYABLE_CODES.has(code);
}

/** `Retry-After` as milliseconds (delta-seconds or an HTTP date), or undefined. */
export function parseRetryAfter(v: string | string[] | undefined, now = Date.now()): number | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  if (!s) return undefined;
  if (/^\s*\d+\s*$/.test(s)) return Number(s) * 1000;
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

/** Full-jitter exponential backoff for retry number `attempt` (1 = first retry). */
export function backoffMs(policy: RetryPolicy, attempt: number, random = Math.random): number {
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(random() * cap);
}
