import type { FuseOps } from "fuse-native";
import type { FsCore } from "../fs-core.js";
import { answer } from "./adapt.js";

export function open(core: FsCore): NonNullable<FuseOps["open"]> {
  return (path, flags, cb) => answer(cb, () => core.open(path, flags));
}
