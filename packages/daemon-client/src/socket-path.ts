import { isRootless, xdgRuntimeDir } from "@lazypull/host";
import { connect } from "node:net";
import { join } from "node:path";

export const DEFAULT_SOCKET_PATH = "/run/lazypull/lazypulld.sock";

/**
 * The daemon's socket: `$LAZYPULL_SOCKET`, else `/run/lazypull/lazypulld.sock` for root and
 * `$XDG_RUNTIME_DIR/lazypull/lazypulld.sock` for a rootless user's own lazypulld.
 */
export function daemonSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  const s = env.LAZYPULL_SOCKET?.trim();
  if (s) return s;
  if (isRootless(env)) return rootlessSocketPath(env) ?? DEFAULT_SOCKET_PATH;
  return DEFAULT_SOCKET_PATH;
}

/** A rootless user's lazypulld socket, `$XDG_RUNTIME_DIR/lazypull/lazypulld.sock` (none without a runtime dir). */
export function rootlessSocketPath(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const dir = xdgRuntimeDir(env);
  return dir === undefined ? undefined : join(dir, "lazypull", "lazypulld.sock");
}

/**
 * True when something accepts connections on the socket (cheap: one connect, no request). A socket
 * file left by a dead daemon refuses the connection, so it counts as unavailable.
 */
export function isDaemonAvailable(socketPath: string = daemonSocketPath(), timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ path: socketPath });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.once("connect", () => done(true));
    sock.once("error", () => done(false));
  });
}
