/**
 * Every error lazypull raises on purpose is a `LazypullError` with a stable string `code`.
 * Callers branch on `code` (it survives duplicate installs, where `instanceof` does not);
 * `context` carries what an operator needs to act (registry, repository, digest, path, …).
 */
export type ErrorContext = Record<string, unknown>;

export class LazypullError extends Error {
  readonly code: string;
  readonly context: ErrorContext;

  constructor(code: string, message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.context = context;
  }

  toJSON(): { name: string; code: string; message: string; context: ErrorContext } {
    return { name: this.name, code: this.code, message: this.message, context: this.context };
  }
}

/** True for any error carrying a lazypull `code` (optionally a specific one). */
export function hasCode(err: unknown, code?: string): err is LazypullError {
  if (typeof err !== "object" || err === null) return false;
  const c = (err as { code?: unknown }).code;
  return typeof c === "string" && (code === undefined || c === code);
}

/** A one-line, human-readable description for CLIs and logs. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === "string" ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}
