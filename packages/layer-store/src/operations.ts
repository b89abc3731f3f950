import type { FuseOps } from "fuse-native";
import type { Logger } from "pino";
import { hasCode } from "@lazypull/errors";
import { readOnlyOps } from "@lazypull/fuse-fs";
import type { StoreTree } from "./store-tree.js";

const ENOENT = -2;
const EIO = -5;
const EBADF = -9;
const EROFS = -30;

const byCode: Record<string, number> = {
  LAYER_STORE_NOT_FOUND: ENOENT,
  LAYER_STORE_READ_ONLY: EROFS,
  LAYER_STORE_BAD_HANDLE: EBADF,
};

function errno(err: unknown): number {
  return hasCode(err) ? (byCode[err.code] ?? EIO) : EIO;
}

type Cb<T> = (err: number, value?: T) => void;

/** Answers a callback from a promise (or a throwing call): its value, or the error's errno. */
function reply<T>(cb: Cb<T>, fn: () => Promise<T> | T, log: Logger, op: string, path: string): void {
  // an async wrapper turns a synchronous throw into a rejection like any other
  const result = (async () => fn())();
  result.then(
    (v) => (v === undefined ? cb(0) : cb(0, v)),
    (err: unknown) => {
      const code = errno(err);
      if (code === EIO) log.error({ err, op, path }, "layer store operation failed");
      cb(code);
    },
  );
}

/** The FUSE operations of the store; `count` sees every call. */
export function createOperations(tree: StoreTree, log: Logger, count: () => void): FuseOps {
  const ops: FuseOps = {
    // every write is EROFS except podman's two notifications below
    ...readOnlyOps(),
    getattr: (path, cb) => reply(cb, () => tree.stat(path), log, "getattr", path),
    readdir: (path, cb) =>
      reply<{ names: string[]; stats: unknown[] }>(
        (err, v) => (v ? (cb as (e: number, n: string[], s: unknown[]) => void)(0, v.names, v.stats) : cb(err)),
        () => tree.readdir(path),
        log,
        "readdir",
        path,
      ),
    readlink: (path, cb) => reply(cb, () => tree.readlink(path), log, "readlink", path),
    open: (path, _flags, cb) => reply(cb, () => tree.open(path), log, "open", path),
    read: (path, fd, buf, len, pos, cb) =>
      reply<Buffer>((err, data) => cb(data ? data.copy(buf, 0, 0, Math.min(len, data.length)) : err), () => tree.read(fd, pos, len), log, "read", path),
    release: (_path, fd, cb) => {
      tree.release(fd);
      cb(0);
    },
    create: (path, _mode, cb) => reply(cb, () => tree.create(path), log, "create", path),
    rmdir: (path, cb) => reply(cb, () => tree.rmdir(path), log, "rmdir", path),
    unlink: (path, cb) => reply(cb, () => tree.unlink(path), log, "unlink", path),
  };
  const counted: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(ops) as [string, (...args: unknown[]) => void][]) {
    counted[name] = (...args: unknown[]) => {
      count();
      fn(...args);
    };
  }
  return counted;
}
