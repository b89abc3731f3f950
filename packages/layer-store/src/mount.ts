import { resolve } from "node:path";
import type Fuse from "fuse-native";
import pino from "pino";
import { describeError } from "@lazypull/errors";
import { cleanStaleMount, loadFuseNative } from "@lazypull/fuse-fs";
import { isMountPoint } from "@lazypull/host";
import { LayerStoreError } from "./errors.js";
import { createOperations } from "./operations.js";
import { StoreTree } from "./store-tree.js";
import type { LayerStore, LayerStoreOptions } from "./types.js";

/**
 * Mounts the store at `opts.mountpoint` (an existing directory). A stale mount left there by a dead
 * process is detached first; a live one is an error.
 */
export async function mountLayerStore(opts: LayerStoreOptions): Promise<LayerStore> {
  const mountpoint = resolve(opts.mountpoint);
  const log = (opts.logger ?? pino({ level: "warn" })).child({ component: "layer-store", mountpoint });
  await cleanStaleMount(mountpoint);
  if (await isMountPoint(mountpoint)) {
    throw new LayerStoreError("LAYER_STORE_MOUNTPOINT_BUSY", `${mountpoint} is already a live mount`, { mountpoint });
  }
  let FuseImpl: typeof Fuse;
  try {
    FuseImpl = await loadFuseNative();
  } catch (err) {
    throw new LayerStoreError("LAYER_STORE_MOUNT_FAILED", `cannot load the FUSE addon (fuse-native needs libfuse.so.2): ${describeError(err)}`, { mountpoint }, { cause: err });
  }
  let ops = 0;
  const tree = new StoreTree(opts.backend, log);
  const fuse = new FuseImpl(mountpoint, createOperations(tree, log, () => ops++), {
    // a first lookup resolves the image and reads the layer's TOC over the network
    timeout: opts.opTimeoutMs ?? 120_000,
    // short: a layer the backend let go must stop being found soon; podman looks each up a few times only
    entryTimeout: 1,
    attrTimeout: 1,
    defaultPermissions: true,
    // only the daemon's own user (root, as root's podman is): a lookup makes the daemon fetch with its
    // credentials, which no other user of the host may borrow (rootless podman needs its own daemon)
    allowOther: false,
    // not `ro`: podman's use/release notifications are a create and an rmdir, which a read-only
    // mount would refuse in the kernel; the operations answer EROFS to every other write
    fsname: "lazypull-store,auto_unmount",
    subtype: "lazypull-store",
  });
  try {
    await new Promise<void>((res, rej) => fuse.mount((err) => (err ? rej(err) : res())));
  } catch (err) {
    throw new LayerStoreError("LAYER_STORE_MOUNT_FAILED", `mounting the layer store at ${mountpoint} failed: ${describeError(err)}`, { mountpoint }, { cause: err });
  }
  log.info("layer store mounted");
  let closed: Promise<void> | undefined;
  return {
    mountpoint,
    get opCount() {
      return ops;
    },
    close() {
      closed ??= (async () => {
        try {
          await new Promise<void>((res, rej) => fuse.unmount((err) => (err ? rej(err) : res())));
        } catch (err) {
          if (await isMountPoint(mountpoint)) {
            // podman's overlays hold no reference into the store itself (diff points at the layer mount): detach
            log.warn({ err: describeError(err) }, "layer store busy; detaching lazily");
            await cleanStaleMount(mountpoint, { force: true });
          }
        }
      })();
      return closed;
    },
  };
}
