import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { isDaemonAvailable } from "@lazypull/daemon-client";
import { mountsUnder as hostMountsUnder } from "@lazypull/host";
import { convertImage } from "@lazypull/image-convert";
import { RegistryClient } from "@lazypull/registry-client";
import { importImage, run } from "@lazypull/testkit";
import { NODE_FLAGS } from "../src/node-flags.js";

export const REPO = resolve(import.meta.dirname, "../../..");

export interface DaemonProcess {
  child: ChildProcess;
  pid: number;
  socket: string;
  /** stderr so far (pino JSON lines) */
  log(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawns a real `lazypulld` from source and waits until it answers on its socket. */
export async function spawnDaemon(args: {
  socket: string;
  root: string;
  config?: string;
  /**
   * podman's layer store: default `<root>-store`, so test daemons never share (or take over) the
   * host's default store; false: none
   */
  store?: string | false;
  extra?: string[];
  /** node's own flags; default: the ones the lazypulld bin runs with */
  nodeArgs?: string[];
  /** run the built `dist/main.js` (as installed) instead of the sources through tsx */
  dist?: boolean;
  /** added to this process's environment */
  env?: NodeJS.ProcessEnv;
}): Promise<DaemonProcess> {
  const entry = args.dist ? [join(REPO, "apps/daemon/dist/main.js")] : ["--conditions=@lazypull/source", "--import", "tsx", join(REPO, "apps/daemon/src/main.ts")];
  const argv = [...(args.nodeArgs ?? NODE_FLAGS), ...entry, "--socket", args.socket, "--root", args.root];
  if (args.config) argv.push("--config", args.config);
  if (args.store === false) argv.push("--no-store");
  else argv.push("--store", args.store ?? `${args.root}-store`);
  argv.push(...(args.extra ?? []));
  const child = spawn(process.execPath, argv, { cwd: REPO, env: { ...process.env, ...args.env }, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (b: Buffer) => {
    stderr = (stderr + b.toString()).slice(-200_000);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once("exit", (code, signal) => r({ code, signal })));
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`lazypulld exited ${child.exitCode ?? child.signalCode}: ${stderr}`);
    if (await isDaemonAvailable(args.socket, 500)) break;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`lazypulld did not answer on ${args.socket} within 90s: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, pid: child.pid!, socket: args.socket, log: () => stderr, exited };
}

/** Mount points at or under `root`. */
export async function mountsUnder(root: string): Promise<string[]> {
  return (await hostMountsUnder(root)).map((m) => m.mountPoint);
}

export interface SmallImage {
  /** the converted eStargz image */
  ref: string;
  /** layer-relative file contents, by layer index (bottom first) */
  files: Map<string, Buffer>[];
}

/**
 * A small two-layer image (a few MB of incompressible files, so fetched bytes track read bytes)
 * made with `tar`, imported as an ordinary gzip image and converted to eStargz with 64 KiB chunks.
 */
export async function buildSmallImage(work: string, registryHost: string, fileCount = 12, fileSize = 200_000): Promise<SmallImage> {
  const files: Map<string, Buffer>[] = [new Map(), new Map()];
  for (const [i, layer] of files.entries()) {
    const dir = join(work, `l${i}`);
    await mkdir(join(dir, "data"), { recursive: true });
    await mkdir(join(dir, "etc"), { recursive: true });
    for (let f = 0; f < fileCount / 2; f++) {
      const bytes = randomBytes(fileSize);
      layer.set(`data/l${i}-f${f}.bin`, bytes);
      await writeFile(join(dir, "data", `l${i}-f${f}.bin`), bytes);
    }
    const text = Buffer.from(`layer ${i}\n`);
    layer.set(`etc/layer-${i}`, text);
    await writeFile(join(dir, "etc", `layer-${i}`), text);
    await run("tar", ["--numeric-owner", "-C", dir, "-cf", join(work, `l${i}.tar`), "."]);
  }
  const img = await importImage({
    registryHost,
    repository: "src/small",
    tag: "v1",
    layers: files.map((_, i) => ({ tar: join(work, `l${i}.tar`) })),
    config: { Cmd: ["/bin/true"] },
  });
  const client = new RegistryClient();
  try {
    const ref = `${registryHost}/lazy/small:v1`;
    await convertImage({ client, source: img.ref, destination: ref, chunkSize: 64 * 1024 });
    return { ref, files };
  } finally {
    await client.close();
  }
}
