export { isProcessAlive, processStartTime, isSameProcessAlive } from "./process.js";
export { parseMountinfo, readMounts, isMountPoint, mountsUnder, type MountEntry } from "./mounts.js";
export { sleep, delay } from "./sleep.js";
export { sweepDeadPidEntries } from "./dead-pid-files.js";
export { hostUid, isRootless, inRootlessNamespace, inUserNamespace, xdgDir, xdgRuntimeDir } from "./rootless.js";
export { rootlessProblem, findInner, runUnderPodmanUnshare, watchOuter, pollUntil, forwardedSignalWindowMs, type RootlessProblem, type RootlessHost } from "./podman-unshare.js";
