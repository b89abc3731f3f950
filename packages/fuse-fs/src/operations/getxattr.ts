import type { FuseOps } from "fuse-native";
import type { FsCore } from "../fs-core.js";
import { answer } from "./adapt.js";

export function getxattr(core: FsCore): NonNullable<FuseOps["getxattr"]> {
  return (path, name, _position, cb) => answer(cb, () => core.getxattr(path, name));
}
