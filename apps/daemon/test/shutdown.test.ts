// Stopping lazypulld while its background fetch is running stops the fetches first: one "stopping" and
// one "stopped" line, no warnings (it used to log dozens of `CacheClosedError`s as runs landed in a
// closed cache).
import { createServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { acquireImageLayersFromDaemon, DaemonClient } from "@lazypull/daemon-client";
import { cleanStaleMount } from "@lazypull/fuse-fs";
import { spawnDaemon, startRegistry, type DaemonProcess, type RegistryProcess } from "@lazypull/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildSmallImage, mountsUnder } from "./helpers.js";

/** A proxy in front of the registry that sends response bodies at `bytesPerSecond`. */
async function throttlingProxy(port: number, bytesPerSecond: number): Promise<{ host: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const up = httpRequest({ host: "127.0.0.1", port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      void (async () => {
        try {
          for await (const chunk of ur as AsyncIterable<Buffer>) {
            await sleep((chunk.length / bytesPerSecond) * 1000);
            if (!res.write(chunk)) await new Promise((r) => res.once("drain", r));
          }
          res.end();
        } catch {
          res.destroy();
        }
      })();
    });
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

let work: string;
let registry: RegistryProcess;
let proxy: { host: string; close(): Promise<void> };
let daemon: DaemonProcess | undefined;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "lazypull-daemon-shutdown-"));
  registry = await startRegistry();
  // 2 layers of 10 MB in 64 KiB chunks at 4 MB/s: the background fetch is surely running at SIGTERM
  await buildSmallImage(join(work, "image"), registry.host, 100, 200_000);
  proxy = await throttlingProxy(Number(registry.host.split(":")[1]), 4 * 1024 * 1024);
}, 180_000);

afterAll(async () => {
  if (daemon && daemon.child.exitCode === null && daemon.child.signalCode === null) {
    daemon.child.kill("SIGKILL");
    await daemon.exited;
  }
  for (const m of await mountsUnder(work)) await cleanStaleMount(m, { force: true }).catch(() => undefined);
  await proxy?.close();
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe("lazypulld shutdown", () => {
  it("should stop its background fetches first and log no warnings when stopped mid-fetch", async () => {
    await mkdir(join(work, "run"), { mode: 0o700 });
    const socket = join(work, "run", "lazypulld.sock");
    const config = join(work, "lazypulld.json");
    await writeFile(config, JSON.stringify({ cacheDir: join(work, "cache"), prefetch: "all", backgroundSilenceMs: 0, logLevel: "info" }));
    daemon = await spawnDaemon({ socket, root: join(work, "root"), config, store: false });
    const client = new DaemonClient({ socketPath: socket });
    try {
      await acquireImageLayersFromDaemon(`${proxy.host}/lazy/small:v1`, { socketPath: socket });
      const deadline = Date.now() + 30_000;
      for (;;) {
        const layers = await client.layers();
        if (layers.some((l) => l.state === "fetching" && l.bytesFetched > 0 && l.bytesFetched < l.bytesTotal)) break;
        if (Date.now() > deadline) throw new Error(`background fetch never seen running: ${JSON.stringify(layers)}`);
        await sleep(50);
      }
    } finally {
      await client.close();
    }
    const before = daemon.log().length;
    daemon.child.kill("SIGTERM");
    expect(await daemon.exited).toEqual({ code: 0, signal: null });
    const lines = daemon
      .log()
      .slice(before)
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { level: number; msg: string; err?: { code?: string } });
    expect(lines.filter((l) => l.level >= 40)).toEqual([]);
    expect(lines.filter((l) => l.msg === "stopping" || l.msg === "lazypulld stopped").map((l) => l.msg)).toEqual(["stopping", "lazypulld stopped"]);
    expect(await mountsUnder(work)).toEqual([]);
  }, 120_000);
});
