/**
 * Every error lazypull raises on purpose is a `LazypullError` with a stable string `code`.
 * Callers branch on `code` (it survives duplicate installs, where `instanceof` does not);
 * `context` carries what an operator needs to act (registry, repository, digest, path, …).
 * Every code is listed, with what to do about it, in the repository's ERRORS.md.
 */
export type ErrorContext = Record<string, unknown>;

/** Marks lazypull's errors across duplicate installs of this package (a registered symbol is one per process). */
const BRAND = Symbol.for("lazypull.error");

/**
 * `C` is the union of codes a subclass may raise, so `new FuseFsError("FUSEFS_TYPO", …)` does not
 * compile; a package's class is then just `class FuseFsError extends LazypullError<FuseFsErrorCode> {}`.
 */
export class LazypullError<C extends string = string> extends Error {
  readonly code: C;
  readonly context: ErrorContext;

  constructor(code: C, message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.context = context;
    Object.defineProperty(this, BRAND, { value: true });
  }

  toJSON(): { name: string; code: C; message: string; context: ErrorContext } {
    return { name: this.name, code: this.code, message: this.message, context: this.context };
  }
}

/** True for lazypull's own errors (not, say, a Node `ENOENT`, which has a `code` too). */
export function isLazypullError(err: unknown): err is LazypullError {
  return typeof err === "object" && err !== null && (err as Record<symbol, unknown>)[BRAND] === true;
}

/** True for a lazypull error (optionally with a specific code). */
export function hasCode(err: unknown, code?: string): err is LazypullError {
  return isLazypullError(err) && (code === undefined || err.code === code);
}

/** A one-line, human-readable description for CLIs and logs. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === "string" ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}
