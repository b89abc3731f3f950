import type { FuseOps } from "fuse-native";
import type { FsCore } from "../fs-core.js";
import { answer } from "./adapt.js";

export function getattr(core: FsCore): NonNullable<FuseOps["getattr"]> {
  return (path, cb) => answer(cb, () => core.stat(path));
}
