import type { FuseOps } from "fuse-native";
import type { Logger } from "pino";
import type { FsCore } from "../fs-core.js";
import { access } from "./access.js";
import { getattr } from "./getattr.js";
import { getxattr } from "./getxattr.js";
import { listxattr } from "./listxattr.js";
import { open } from "./open.js";
import { read } from "./read.js";
import { readOnlyOps } from "./read-only.js";
import { readdir } from "./readdir.js";
import { readlink } from "./readlink.js";
import { release } from "./release.js";
import { statfs } from "./statfs.js";

/** The one place the FUSE operations map is assembled. */
export function createOperations(core: FsCore, log: Logger) {
  return {
    getattr: getattr(core),
    readdir: readdir(core),
    readlink: readlink(core),
    open: open(core),
    read: read(core, log),
    release: release(core),
    getxattr: getxattr(core),
    listxattr: listxattr(core),
    statfs: statfs(core),
    access: access(core),
    ...readOnlyOps(),
  } satisfies FuseOps;
}
