import type { FuseOps } from "fuse-native";
import type { FsCore } from "../fs-core.js";

export function release(core: FsCore): NonNullable<FuseOps["release"]> {
  return (_path, fd, cb) => {
    core.release(fd);
    cb(0);
  };
}
