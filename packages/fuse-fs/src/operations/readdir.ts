import type { FuseOps } from "fuse-native";
import type { FsCore } from "../fs-core.js";
import { toErrno } from "./errno.js";

export function readdir(core: FsCore): NonNullable<FuseOps["readdir"]> {
  return (path, cb) => {
    let listing: ReturnType<FsCore["readdir"]>;
    try {
      listing = core.readdir(path);
    } catch (err) {
      cb(toErrno(err));
      return;
    }
    cb(0, listing.names, listing.stats);
  };
}
