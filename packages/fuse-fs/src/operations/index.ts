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

/** The one place the FUSE operations map is assembled; every call is counted in `core.opCount`. */
export function createOperations(core: FsCore, log: Logger) {
  const ops = {
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
  return countCalls(core, ops);
}

function countCalls<T extends FuseOps>(core: FsCore, ops: T): T {
  const counted: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(ops) as [string, (...args: unknown[]) => void][]) {
    counted[name] = (...args: unknown[]) => {
      core.opCount += 1;
      fn(...args);
    };
  }
  return counted as T;
}
