import type { FuseOps } from "fuse-native";
import type { Logger } from "pino";
import type { FsCore } from "../fs-core.js";
import { answer } from "./adapt.js";
import { Errno, toErrno } from "./errno.js";
import { readOnlyOps } from "./read-only.js";

/**
 * The FUSE operations, one line each: every op is answered by `FsCore` (which knows nothing of FUSE),
 * its value or its error's errno handed to the kernel. Every call is counted in `core.opCount`.
 */
export function createOperations(core: FsCore, log: Logger) {
  /**
   * Runs `op` once the layer `path` lies in is open (at once for most calls); a layer that cannot be
   * opened answers EIO. `rootToo`: the layer's own directory waits as well (listing it, its xattrs).
   */
  const whenOpen = (path: string, rootToo: boolean, cb: (err: number) => void, op: () => void): void => {
    const wait = core.waitFor(path, rootToo);
    if (!wait) return op();
    wait.then(op, () => cb(Errno.EIO));
  };
  const ops = {
    getattr: (path, cb) => whenOpen(path, false, cb, () => answer(cb, () => core.stat(path))),
    readdir: (path, cb) => whenOpen(path, true, cb, () => {
      let listing: ReturnType<FsCore["readdir"]>;
      try {
        listing = core.readdir(path);
      } catch (err) {
        return cb(toErrno(err));
      }
      cb(0, listing.names, listing.stats);
    }),
    readlink: (path, cb) => whenOpen(path, true, cb, () => answer(cb, () => core.readlink(path))),
    open: (path, flags, cb) => whenOpen(path, true, cb, () => answer(cb, () => core.open(path, flags))),
    // asynchronous: the event loop keeps answering other ops while chunks arrive
    read: (path, fd, buf, len, pos, cb) => {
      core.read(fd, path, pos, len).then(
        (data) => cb(data.copy(buf, 0, 0, Math.min(len, data.length))),
        (err: unknown) => {
          log.warn({ err, path, pos, len }, "read failed");
          cb(toErrno(err));
        },
      );
    },
    release: (_path, fd, cb) => {
      core.release(fd);
      cb(0);
    },
    getxattr: (path, name, _position, cb) => whenOpen(path, true, cb, () => answer(cb, () => core.getxattr(path, name))),
    listxattr: (path, cb) => whenOpen(path, true, cb, () => answer(cb, () => core.listxattr(path))),
    statfs: (_path, cb) => answer(cb, () => core.statfs()),
    access: (path, mode, cb) => whenOpen(path, false, cb, () => answer(cb, () => core.access(path, mode))),
    ...readOnlyOps(),
  } satisfies FuseOps;
  return countCalls(core, ops);
}

function countCalls<T extends FuseOps>(core: FsCore, ops: T): T {
  const counted: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(ops) as [string, (...args: unknown[]) => void][]) {
    counted[name] = (...args: unknown[]) => {
      core.opCount += 1;
      fn(...args);
    };
  }
  return counted as T;
}
