import type { FuseOps } from "fuse-native";
import type { Logger } from "pino";
import type { FsCore } from "../fs-core.js";
import { toErrno } from "./errno.js";

/** Reads asynchronously (the event loop keeps answering other ops) and copies into the kernel's buffer. */
export function read(core: FsCore, log: Logger): NonNullable<FuseOps["read"]> {
  return (path, fd, buf, len, pos, cb) => {
    core.read(fd, path, pos, len).then(
      (data) => cb(data.copy(buf, 0, 0, Math.min(len, data.length))),
      (err: unknown) => {
        log.warn({ err, path, pos, len }, "read failed");
        cb(toErrno(err));
      },
    );
  };
}
