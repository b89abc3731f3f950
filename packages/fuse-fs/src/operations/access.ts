import type { FuseOps } from "fuse-native";
import type { FsCore } from "../fs-core.js";
import { answer } from "./adapt.js";

export function access(core: FsCore): NonNullable<FuseOps["access"]> {
  return (path, mode, cb) => answer(cb, () => core.access(path, mode));
}
