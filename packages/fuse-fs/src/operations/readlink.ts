import type { FuseOps } from "fuse-native";
import type { FsCore } from "../fs-core.js";
import { answer } from "./adapt.js";

export function readlink(core: FsCore): NonNullable<FuseOps["readlink"]> {
  return (path, cb) => answer(cb, () => core.readlink(path));
}
