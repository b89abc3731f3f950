import pino from "pino";
import { describe, expect, it } from "vitest";
import { LazypullError } from "@lazypull/errors";
import { FetchCounters } from "./counters.js";
import { withRetries } from "./retry.js";

const what = { digest: "sha256:" + "a".repeat(64), offset: 0, length: 10 };
const policy = { attempts: 4, delayMs: 1 };

async function attemptsUntilFailure(err: Error): Promise<{ calls: number; code: unknown; cause: unknown; errors: number }> {
  const counters = new FetchCounters();
  let calls = 0;
  const got = await withRetries(what, policy, { counters, log: pino({ level: "silent" }), signal: new AbortController().signal }, async () => {
    calls += 1;
    throw err;
  }).catch((e: { code?: unknown; cause?: unknown }) => e);
  return { calls, code: (got as { code?: unknown }).code, cause: (got as { cause?: unknown }).cause, errors: counters.errors };
}

describe("withRetries", () => {
  it("should try a transient failure up to the policy's attempts", async () => {
    const err = new LazypullError("REGISTRY_UNAVAILABLE", "503");
    expect(await attemptsUntilFailure(err)).toEqual({ calls: 4, code: "FUSEFS_FETCH_FAILED", cause: err, errors: 4 });
  });

  it("should stop at the first failure another attempt cannot change", async () => {
    for (const code of ["FUSEFS_BAD_LAYER", "REGISTRY_NOT_FOUND", "REGISTRY_UNAUTHORIZED"]) {
      const err = new LazypullError(code, code);
      expect(await attemptsUntilFailure(err)).toEqual({ calls: 1, code: "FUSEFS_FETCH_FAILED", cause: err, errors: 1 });
    }
  });
});
