import { loadFuseNative } from "@lazypull/fuse-fs";
import { whenFirstRequestSent } from "./first-request.js";

/**
 * Loads the FUSE addon (fuse-native: ~20 ms of synchronous require and dlopen) right after the first
 * registry request is on the wire, while its answer is on the way, instead of before it: started any
 * earlier, it delays that request by as much. `sent` resolves once it was started (or `cancel()` said
 * no request is coming: a manifest from the cache); the mount waits for that.
 */
export function loadFuseNativeAfterFirstRequest(): { sent: Promise<void>; cancel(): void } {
  const w = whenFirstRequestSent(() => void loadFuseNative().catch(() => undefined));
  return { sent: w.done, cancel: () => w.now() };
}
