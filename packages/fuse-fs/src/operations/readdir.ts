import type { FuseOps } from "fuse-native";
import type { FsCore } from "../fs-core.js";
import { answer } from "./adapt.js";

export function readdir(core: FsCore): NonNullable<FuseOps["readdir"]> {
  return (path, cb) => answer(cb, () => core.readdir(path));
}
