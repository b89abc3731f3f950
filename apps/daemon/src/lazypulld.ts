import pino from "pino";
import { describeError } from "@lazypull/errors";
import { forwardedSignalWindowMs } from "@lazypull/host";
import { loadConfig, USAGE } from "./config.js";
import { startDaemon } from "./daemon.js";
import { OUTER_ENV, runInRootlessNamespace, watchNamespace, watchOuter } from "./rootless.js";
import { VERSION } from "./version.js";

/**
 * `lazypulld` in the foreground (systemd runs it as a simple service). SIGTERM/SIGINT unmount
 * everything and exit 0; a second signal, or a shutdown stuck for 30 s, exits 1. An ordinary user's
 * lazypulld runs inside rootless podman's namespaces (see rootless.ts).
 */
async function main(): Promise<number> {
  const config = await loadConfig(process.argv.slice(2));
  if (config === "help" || config === "version") {
    process.stdout.write(config === "help" ? USAGE : `${VERSION}\n`);
    return 0;
  }
  // the config is checked first, so a bad flag is reported without podman in the way
  const rootless = await runInRootlessNamespace(process.argv, process.env, { store: config.store });
  if (rootless !== undefined) return rootless;
  const log = pino({ level: config.logLevel, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: false }));
  const daemon = await startDaemon(config, log);
  let unwatchOuter = () => {};
  let unwatchNamespace = () => {};
  // Under a rootless outer process, a signal sent to the whole process group (`kill %1`, systemd's
  // default KillMode) arrives twice: directly, and passed on by the outer. The copy is not a second request.
  const sameRequestMs = forwardedSignalWindowMs(OUTER_ENV);
  return await new Promise<number>((resolve) => {
    let stopping = false;
    let first: { signal: string; at: number } | undefined;
    const stop = (signal: NodeJS.Signals | "outer process gone" | "namespace replaced", code = 0) => {
      if (stopping && first?.signal === signal && Date.now() - first.at < sameRequestMs) {
        log.debug({ signal }, "the same signal again, passed on by the outer process; already stopping");
        return;
      }
      if (stopping) {
        log.warn({ signal }, "second signal while stopping; exiting now");
        resolve(1);
        return;
      }
      stopping = true;
      first = { signal, at: Date.now() };
      log.info({ signal }, "stopping");
      const stuck = setTimeout(() => {
        log.error("shutdown took more than 30 s; exiting");
        resolve(1);
      }, 30_000);
      stuck.unref();
      daemon.close().then(
        () => resolve(code),
        (err: unknown) => {
          log.error({ err }, "shutdown failed");
          resolve(1);
        },
      );
    };
    // not `stop` itself: node passes the signal's number as a second argument, which would be the exit code
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
    void watchOuter(() => {
      if (!stopping) stop("outer process gone");
    }).then((u) => {
      unwatchOuter = u;
    });
    unwatchNamespace = watchNamespace(() => {
      if (stopping) return;
      log.error(
        "podman has made new rootless namespaces (podman system migrate or reset, or its pause process was killed): our mounts are no longer where podman looks; stopping, to be started again inside the new ones",
      );
      // non-zero: systemd's Restart=on-failure starts the daemon again, inside podman's new namespaces
      stop("namespace replaced", 1);
    });
  }).finally(() => {
    unwatchOuter();
    unwatchNamespace();
    log.flush();
  });
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`lazypulld: ${describeError(err)}\n`);
    if (process.env.LAZYPULL_DEBUG) console.error(err);
    process.exit(1);
  },
);
