// Memory is bounded by lazypull, not by the chunk sizes or compression ratios an image declares: a file
// stored as one 512 MiB chunk whose gzip member inflates ~1000:1, and a 48 MiB incompressible one-chunk
// file, converted and then served (eStargz and whole gzip layers) with each process's peak RSS measured.
import type { ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { RegistryClient } from "@lazypull/registry-client";
import { run, spawnSource, startRegistry, type RegistryProcess } from "@lazypull/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isMountPoint } from "@lazypull/host";
import { pushImage, type ConvertedBlob, type PushLayer } from "./helpers/image.js";

const MiB = 1024 * 1024;
/**
 * Peak RSS allowed to the process that serves the mount (and to the converter): node and its modules
 * (~90 MB under tsx), the blob cache's 64 MiB memory tier, the mount's 64 MiB chunk LRU, and the fetch
 * budget's share; documented in fuse-fs's README. Before streaming, the 512 MiB chunk alone took > 4 GB.
 */
const RSS_CEILING_BYTES = 320 * MiB;
const ZEROS_BYTES = 512 * MiB;
const RANDOM_BYTES = 48 * MiB;

function child(script: string, args: string[]): ChildProcess {
  return spawnSource(join(import.meta.dirname, "helpers", script), args, { stdio: ["ignore", "pipe", "pipe"] });
}

/** The first stdout line of a child, parsed as JSON; rejects with its stderr when it exits first. */
function firstLine<T>(c: ChildProcess): Promise<T> {
  return new Promise((res, rej) => {
    let out = "";
    let err = "";
    c.stderr!.on("data", (b: Buffer) => (err += b.toString()));
    c.stdout!.on("data", (b: Buffer) => {
      out += b.toString();
      const nl = out.indexOf("\n");
      if (nl >= 0) res(JSON.parse(out.slice(0, nl)) as T);
    });
    c.on("exit", (code) => rej(new Error(`${c.spawnargs.join(" ")} exited ${code}: ${err.slice(-4000)}`)));
  });
}

async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = /^VmHWM:\s+(\d+) kB/m.exec(status)?.[1];
  if (!kb) throw new Error(`no VmHWM for ${pid}`);
  return Number(kb) * 1024;
}

async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  await pipeline(createReadStream(path), h);
  return h.digest("hex");
}

describe("bounded memory for any chunk size", () => {
  let tmp: string;
  let registry: RegistryProcess;
  let client: RegistryClient;
  let server: ChildProcess | undefined;
  let mnt: string;
  const expected: Record<string, string> = {};
  let convertRss = 0;

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), "lazypull-fusefs-large-"));
    const src = join(tmp, "src");
    await mkdir(src);
    // zeros: one gzip member inflating ~1000:1; random: a one-chunk member that does not compress
    await run("truncate", ["-s", String(ZEROS_BYTES), join(src, "zeros.bin")]);
    await writeFile(join(src, "random.bin"), randomBytes(RANDOM_BYTES));
    await writeFile(join(src, "hello.txt"), "hello\n");
    for (const f of ["zeros.bin", "random.bin", "hello.txt"]) expected[f] = await sha256File(join(src, f));
    const tar = join(tmp, "layer.tar");
    await run("tar", ["--numeric-owner", "-C", src, "-cf", tar, "."]);
    await rm(src, { recursive: true });

    // the converter, in its own process: every file is one chunk (chunk size 1 GiB)
    const esgz = join(tmp, "layer.esgz");
    const conv = child("convert-child.ts", [tar, esgz, String(1 << 30)]);
    const res = await firstLine<Omit<ConvertedBlob, "path"> & { maxRssBytes: number }>(conv);
    convertRss = res.maxRssBytes;

    const gz = join(tmp, "layer.tar.gz");
    const diff = createHash("sha256");
    const blob = createHash("sha256");
    await pipeline(
      createReadStream(tar),
      async function* (s: AsyncIterable<Buffer>) {
        for await (const b of s) {
          diff.update(b);
          yield b;
        }
      },
      createGzip({ level: 1 }),
      async function* (s: AsyncIterable<Buffer>) {
        for await (const b of s) {
          blob.update(b);
          yield b;
        }
      },
      createWriteStream(gz),
    );
    await rm(tar);
    const whole: PushLayer = {
      path: gz,
      digest: `sha256:${blob.digest("hex")}`,
      size: (await stat(gz)).size,
      mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
      diffId: `sha256:${diff.digest("hex")}`,
    };
    registry = await startRegistry();
    client = new RegistryClient();
    await pushImage(client, `${registry.host}/large:1`, [{ path: esgz, ...res }, whole]);
    mnt = join(tmp, "mnt");
    await mkdir(mnt);
  }, 300_000);

  afterAll(async () => {
    if (server && server.exitCode === null && server.signalCode === null) {
      server.kill("SIGTERM");
      await new Promise((r) => server!.once("exit", r));
    }
    await client?.close();
    await registry?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it("should convert a 512 MiB one-chunk file with the converter's peak RSS under the ceiling", () => {
    console.log(`convert: peak RSS ${(convertRss / MiB).toFixed(0)} MiB (ceiling ${RSS_CEILING_BYTES / MiB} MiB)`);
    expect(convertRss).toBeGreaterThan(0);
    expect(convertRss).toBeLessThan(RSS_CEILING_BYTES);
  });

  it("should serve one-chunk files of 512 MiB (1000:1) and 48 MiB byte-exactly, from eStargz and whole gzip layers, with the server's peak RSS under the ceiling", async () => {
    server = child("serve-image-child.ts", [mnt, join(tmp, "cache"), `${registry.host}/large:1`]);
    const dirs = await firstLine<string[]>(server);
    expect(dirs).toHaveLength(2);
    const started = Date.now();
    for (const dir of dirs) {
      // read in another process (the server must never read its own mount), one file at a time
      for (const f of ["zeros.bin", "random.bin", "hello.txt"]) {
        const got = await run("sha256sum", [join(dir, f)]);
        expect({ dir, f, sum: got.stdout.split(" ")[0] }).toEqual({ dir, f, sum: expected[f] });
      }
    }
    const rss = await peakRss(server.pid!);
    console.log(`serve: 2 layers x ${(ZEROS_BYTES + RANDOM_BYTES) / MiB} MiB read in ${Date.now() - started} ms, peak RSS ${(rss / MiB).toFixed(0)} MiB`);
    expect(rss).toBeLessThan(RSS_CEILING_BYTES);
    server.kill("SIGTERM");
    await new Promise((r) => server!.once("exit", r));
    expect(await isMountPoint(mnt)).toBe(false);
  }, 300_000);
});
