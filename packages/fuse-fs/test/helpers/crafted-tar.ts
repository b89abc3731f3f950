import { createHash, randomBytes } from "node:crypto";
import { spawn } from "node:child_process";
import { createReadStream, createWriteStream } from "node:fs";
import { readFile, stat, writeFile } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import tarStream from "tar-stream";
import type { PushLayer } from "./image.js";

const mtime = new Date("2024-05-06T07:08:09Z");

/**
 * A small tar with everything a layer can hold: setuid/sticky modes, owners, a hardlink, a symlink,
 * char/block devices, a fifo, an xattr (PAX), overlay whiteouts and a file spanning several chunks.
 */
export async function writeCraftedTar(path: string): Promise<{ big: Buffer }> {
  const pack = tarStream.pack();
  const out = pipeline(pack, createWriteStream(path));
  const big = randomBytes(5 * 1024 * 1024 + 12345);
  const add = (h: tarStream.Headers & { pax?: Record<string, string> }, body?: Buffer) =>
    new Promise<void>((res, rej) => pack.entry({ mtime, uid: 0, gid: 0, ...h }, body ?? Buffer.alloc(0), (e) => (e ? rej(e) : res())));
  await add({ name: "./", type: "directory", mode: 0o755 });
  await add({ name: "./etc/", type: "directory", mode: 0o755 });
  await add({ name: "./etc/hello", type: "file", mode: 0o640, uid: 1000, gid: 1001 }, Buffer.from("hello, lazy world\n"));
  await add({ name: "./etc/hello-hard", type: "link", linkname: "./etc/hello", mode: 0o640, uid: 1000, gid: 1001 });
  await add({ name: "./etc/hello-sym", type: "symlink", linkname: "hello", mode: 0o777 });
  await add({ name: "./etc/cap", type: "file", mode: 0o644, pax: { "SCHILY.xattr.user.lazypull": "tested" } }, Buffer.from("x"));
  await add({ name: "./usr/", type: "directory", mode: 0o755 });
  await add({ name: "./usr/bin/", type: "directory", mode: 0o755 });
  await add({ name: "./usr/bin/su", type: "file", mode: 0o4755 }, Buffer.from("#!/bin/sh\n"));
  await add({ name: "./tmp/", type: "directory", mode: 0o1777 });
  await add({ name: "./dev/", type: "directory", mode: 0o755 });
  await add({ name: "./dev/null", type: "character-device", mode: 0o666, devmajor: 1, devminor: 3 });
  await add({ name: "./dev/loop0", type: "block-device", mode: 0o660, gid: 6, devmajor: 7, devminor: 0 });
  await add({ name: "./run/", type: "directory", mode: 0o755 });
  await add({ name: "./run/fifo", type: "fifo", mode: 0o600 });
  await add({ name: "./.wh.removed", type: "file", mode: 0o000 });
  await add({ name: "./opaque/", type: "directory", mode: 0o755 });
  await add({ name: "./opaque/.wh..wh..opq", type: "file", mode: 0o000 });
  await add({ name: "./big.bin", type: "file", mode: 0o644 }, big);
  await add({ name: "./empty", type: "file", mode: 0o644 });
  pack.finalize();
  await out;
  return { big };
}

/** An upper layer that deletes etc/hello and makes usr/ opaque (overlay whiteouts as plain files). */
export async function writeWhiteoutTar(path: string): Promise<void> {
  const pack = tarStream.pack();
  const out = pipeline(pack, createWriteStream(path));
  const add = (h: tarStream.Headers, body?: Buffer) =>
    new Promise<void>((res, rej) => pack.entry({ mtime, uid: 0, gid: 0, ...h }, body ?? Buffer.alloc(0), (e) => (e ? rej(e) : res())));
  await add({ name: "./etc/", type: "directory", mode: 0o755 });
  await add({ name: "./etc/.wh.hello", type: "file", mode: 0 });
  await add({ name: "./usr/", type: "directory", mode: 0o755 });
  await add({ name: "./usr/.wh..wh..opq", type: "file", mode: 0 });
  await add({ name: "./usr/new", type: "file", mode: 0o644 }, Buffer.from("new file\n"));
  pack.finalize();
  await out;
}

async function describe(path: string, mediaType: string, diffId: string): Promise<PushLayer> {
  const hash = createHash("sha256");
  for await (const b of createReadStream(path)) hash.update(b as Buffer);
  return { path, digest: `sha256:${hash.digest("hex")}`, size: (await stat(path)).size, mediaType, diffId };
}

/** The tar as ordinary layers: gzip, zstd (system binary) and uncompressed. */
export async function plainLayers(tar: string): Promise<{ gzip: PushLayer; zstd: PushLayer; plain: PushLayer }> {
  const diffId = `sha256:${createHash("sha256").update(await readFile(tar)).digest("hex")}`;
  await pipeline(createReadStream(tar), createGzip(), createWriteStream(`${tar}.gz`));
  await new Promise<void>((res, rej) => {
    const c = spawn("zstd", ["-q", "-f", "-o", `${tar}.zst`, tar], { stdio: "ignore" });
    c.on("error", rej);
    c.on("close", (code) => (code === 0 ? res() : rej(new Error(`zstd exited ${code}`))));
  });
  await writeFile(`${tar}.copy`, await readFile(tar));
  return {
    gzip: await describe(`${tar}.gz`, "application/vnd.oci.image.layer.v1.tar+gzip", diffId),
    zstd: await describe(`${tar}.zst`, "application/vnd.oci.image.layer.v1.tar+zstd", diffId),
    plain: await describe(`${tar}.copy`, "application/vnd.oci.image.layer.v1.tar", diffId),
  };
}
