#!/usr/bin/env -S node --optimize-for-size
import pino from "pino";
import { describeError } from "@lazypull/errors";
import { loadConfig, USAGE } from "./config.js";
import { startDaemon } from "./daemon.js";
import { missingNodeFlags } from "./node-flags.js";

/**
 * `lazypulld` in the foreground (systemd runs it as a simple service). SIGTERM/SIGINT unmount
 * everything and exit 0; a second signal, or a shutdown stuck for 30 s, exits 1.
 */
async function main(): Promise<number> {
  const config = await loadConfig(process.argv.slice(2));
  if (!config) {
    process.stdout.write(USAGE);
    return 0;
  }
  const log = pino({ level: config.logLevel, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: false }));
  const daemon = await startDaemon(config, log);
  const missing = missingNodeFlags();
  if (missing.length > 0) log.warn({ missing }, "started without lazypulld's node flags: memory will run higher (run the lazypulld bin or pass them to node)");
  return await new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        log.warn({ signal }, "second signal while stopping; exiting now");
        resolve(1);
        return;
      }
      stopping = true;
      log.info({ signal }, "stopping");
      const stuck = setTimeout(() => {
        log.error("shutdown took more than 30 s; exiting");
        resolve(1);
      }, 30_000);
      stuck.unref();
      daemon.close().then(
        () => resolve(0),
        (err: unknown) => {
          log.error({ err }, "shutdown failed");
          resolve(1);
        },
      );
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
  }).finally(() => log.flush());
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`lazypulld: ${describeError(err)}\n`);
    if (process.env.LAZYPULL_DEBUG) console.error(err);
    process.exit(1);
  },
);
