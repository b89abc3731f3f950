import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { loadFuseNative } from "@lazypull/fuse-fs";

const SENT = "undici:client:sendHeaders";

/**
 * Loads the FUSE addon (fuse-native: ~20 ms of synchronous require and dlopen) right after the first
 * registry request is on the wire, while its answer is on the way, instead of before it: started any
 * earlier, it delays that request by as much. The mount loads it itself if no request comes first (a
 * manifest from the cache, lazypulld).
 */
export function loadFuseNativeAfterFirstRequest(): { sent: Promise<void>; cancel(): void } {
  let done!: () => void;
  const sent = new Promise<void>((res) => (done = res));
  const onSent = () => {
    unsubscribe(SENT, onSent);
    // after the write, not inside undici's publish
    setImmediate(() => {
      loadFuseNative().catch(() => undefined);
      done();
    });
  };
  subscribe(SENT, onSent);
  return {
    /** resolves once the first request is on the wire (or `cancel()` says none is coming) */
    sent,
    cancel() {
      unsubscribe(SENT, onSent);
      done();
    },
  };
}
