export type * from "./types.js";
export { DaemonClient, type DaemonClientOptions } from "./client.js";
export { DaemonClientError, DAEMON_CLIENT_ERROR_CODES, type DaemonClientErrorCode } from "./errors.js";
export { daemonSocketPath, rootlessSocketPath, isDaemonAvailable, DEFAULT_SOCKET_PATH } from "./socket-path.js";
export { acquireImageLayersFromDaemon, type DaemonAcquireOptions } from "./acquire.js";
/** the contract `acquireImageLayersFromDaemon` implements; defined (once) in @lazypull/image */
export type { ImageLayers } from "@lazypull/image";
