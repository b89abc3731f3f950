import type { FuseOps } from "fuse-native";
import { Errno } from "./errno.js";

/** Every operation that would change the filesystem answers EROFS: layers are immutable. */
export function readOnlyOps() {
  const erofs = (...args: unknown[]) => (args[args.length - 1] as (err: number) => void)(Errno.EROFS);
  return {
    write: erofs,
    create: erofs,
    truncate: erofs,
    ftruncate: erofs,
    unlink: erofs,
    rename: erofs,
    link: erofs,
    symlink: erofs,
    mkdir: erofs,
    rmdir: erofs,
    mknod: erofs,
    chmod: erofs,
    chown: erofs,
    utimens: erofs,
    setxattr: erofs,
    removexattr: erofs,
  } satisfies FuseOps;
}
