import type { FuseOps } from "fuse-native";
import type { FsCore } from "../fs-core.js";
import { answer } from "./adapt.js";

export function statfs(core: FsCore): NonNullable<FuseOps["statfs"]> {
  return (_path, cb) => answer(cb, () => core.statfs());
}
