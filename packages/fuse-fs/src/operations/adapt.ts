import { toErrno } from "./errno.js";

/** Answers a FUSE callback from a synchronous function: its value on success, its errno on a throw. */
export function answer<T>(cb: (err: number, value?: T) => void, fn: () => T): void {
  let value: T;
  try {
    value = fn();
  } catch (err) {
    cb(toErrno(err));
    return;
  }
  if (value === undefined) cb(0);
  else cb(0, value);
}
