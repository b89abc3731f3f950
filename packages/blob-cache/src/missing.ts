/**
 * In a cache shared by processes, a file that vanished between two calls (evicted, dropped, replaced) is
 * the normal case, not an error: these tell "no such file" from real disk errors, which must propagate.
 */
export const isMissing = (err: unknown): boolean => (err as NodeJS.ErrnoException)?.code === "ENOENT";

/** For `.catch`: swallows "no such file", rethrows anything else. */
export const ignoreMissing = (err: unknown): void => {
  if (!isMissing(err)) throw err;
};

/** For `.catch`: `undefined` for "no such file", rethrows anything else. */
export const undefinedIfMissing = (err: unknown): undefined => {
  ignoreMissing(err);
  return undefined;
};
