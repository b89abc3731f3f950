import type { FuseOps } from "fuse-native";
import type { FsCore } from "../fs-core.js";
import { answer } from "./adapt.js";

export function listxattr(core: FsCore): NonNullable<FuseOps["listxattr"]> {
  return (path, cb) => answer(cb, () => core.listxattr(path));
}
