export { startDaemon, type Daemon } from "./daemon.js";
export { loadConfig, parseConfigFile, DEFAULT_ROOT, DEFAULT_CONFIG_FILE, type DaemonConfig, type ConfigFile } from "./config.js";
export { ImageStore } from "./images.js";
export { createServer } from "./server.js";
export { statusFor } from "./http-status.js";
export { renderMetrics, type Family, type Sample } from "./metrics.js";
export { DaemonError, DAEMON_ERROR_CODES, type DaemonErrorCode } from "./errors.js";
