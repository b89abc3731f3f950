import type { FuseOps } from "fuse-native";
import type { Logger } from "pino";
import type { FsCore } from "../fs-core.js";
import { answer } from "./adapt.js";
import { toErrno } from "./errno.js";
import { readOnlyOps } from "./read-only.js";

/**
 * The FUSE operations, one line each: every op is answered by `FsCore` (which knows nothing of FUSE),
 * its value or its error's errno handed to the kernel. Every call is counted in `core.opCount`.
 */
export function createOperations(core: FsCore, log: Logger) {
  const ops = {
    getattr: (path, cb) => answer(cb, () => core.stat(path)),
    readdir: (path, cb) => {
      let listing: ReturnType<FsCore["readdir"]>;
      try {
        listing = core.readdir(path);
      } catch (err) {
        return cb(toErrno(err));
      }
      cb(0, listing.names, listing.stats);
    },
    readlink: (path, cb) => answer(cb, () => core.readlink(path)),
    open: (path, flags, cb) => answer(cb, () => core.open(path, flags)),
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
    getxattr: (path, name, _position, cb) => answer(cb, () => core.getxattr(path, name)),
    listxattr: (path, cb) => answer(cb, () => core.listxattr(path)),
    statfs: (_path, cb) => answer(cb, () => core.statfs()),
    access: (path, mode, cb) => answer(cb, () => core.access(path, mode)),
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
