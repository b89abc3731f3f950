export { freePort } from "./free-port.js";
export { startRegistry, type RegistryProcess, type RegistryOptions } from "./registry.js";
export { debianRootfsTar, testCacheDir } from "./debian-rootfs.js";
export { importImage, type ImportedImage, type ImportLayer } from "./import-image.js";
export { run, type RunResult } from "./run.js";
export { REPO_ROOT, CLI_ENTRY, sourceArgs, spawnSource, runSource, runCli } from "./source.js";
export { spawnDaemon, DAEMON_NODE_FLAGS, type DaemonProcess } from "./daemon.js";
export { makeTestPki, type TestPki } from "./pki.js";
export { ensureTestUser, openHostToUsers, restoreHostModes, addModeBits, userEnv, podmanAsUser, type TestUser } from "./rootless-user.js";
