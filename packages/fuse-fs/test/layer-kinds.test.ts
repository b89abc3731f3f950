import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openBlobCache, type BlobCache } from "@lazypull/blob-cache";
import { hasCode } from "@lazypull/errors";
import { RegistryClient } from "@lazypull/registry-client";
import type { Descriptor, ImageReference } from "@lazypull/registry-client";
import { convertToEstargz } from "@lazypull/stargz-format";
import { run, startRegistry, type RegistryProcess } from "@lazypull/testkit";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mountLazyFs, openRemoteLayer, type LazyFs } from "../src/index.js";
import { plainLayers, writeCraftedTar, writeWhiteoutTar } from "./helpers/crafted-tar.js";
import { pushImage, type ConvertedBlob } from "./helpers/image.js";
import { mountSnapshot, tarSnapshot, type TreeEntry } from "./helpers/tar-snapshot.js";

const log = pino({ level: process.env.LAZYPULL_TEST_LOG ?? "silent" });

/** Runs a command in a child process: never read the mount from the process that serves it. */
const sh = (cmd: string, args: string[]) => run(cmd, args, { allowFail: true });

const XATTRS_PY = `import os, sys, json
root = sys.argv[1]
out = {}
for d, dirs, files in os.walk(root):
    for n in dirs + files:
        p = os.path.join(d, n)
        names = os.listxattr(p, follow_symlinks=False)
        if names:
            out[os.path.relpath(p, root)] = {k: os.getxattr(p, k, follow_symlinks=False).decode() for k in names}
print(json.dumps(out, sort_keys=True))`;

/** Every xattr of one file as hex, read in a child process (os.getxattr returns the raw bytes). */
const XATTRS_HEX_PY = `import os, sys, json
p = sys.argv[1]
def get(k):
    try:
        return os.getxattr(p, k, follow_symlinks=False).hex()
    except OSError as e:
        return "error: " + e.strerror
print(json.dumps({k: get(k) for k in sorted(os.listxattr(p, follow_symlinks=False))}))`;

describe("every kind of layer and entry through one mount", () => {
  let registry: RegistryProcess;
  let tmp: string;
  let tar: string;
  let big: Buffer;
  let ref: ImageReference;
  let layers: Descriptor[];
  let expected: Map<string, TreeEntry>;
  let cache: BlobCache;
  let client: RegistryClient;
  let fs: LazyFs | undefined;

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), "lazypull-fusefs-kinds-"));
    tar = join(tmp, "crafted.tar");
    ({ big } = await writeCraftedTar(tar));
    expected = await tarSnapshot(tar);
    const esgz = join(tmp, "crafted.esgz");
    const res = await convertToEstargz(createReadStream(tar), createWriteStream(esgz), { chunkSize: 1024 * 1024 });
    const converted: ConvertedBlob = { path: esgz, ...res };
    const plain = await plainLayers(tar);
    registry = await startRegistry();
    client = new RegistryClient({ retry: { maxAttempts: 2, maxTotalMs: 2000 } });
    ({ ref, layers } = await pushImage(client, `${registry.host}/crafted:1`, [converted, plain.gzip, plain.zstd, plain.plain]));
    cache = await openBlobCache({ dir: join(tmp, "cache") });
  });

  afterAll(async () => {
    await fs?.close();
    await cache?.close();
    await client?.close();
    await registry?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it("should serve eStargz, gzip, zstd and uncompressed layers with the tar's exact entries", async () => {
    const mnt = join(tmp, "mnt");
    await mkdir(mnt);
    fs = await mountLazyFs({ mountpoint: mnt, source: client, cache, prefetch: "none", logger: log });
    const dirs = await Promise.all(layers.map((descriptor) => fs!.addLayer({ ref, descriptor }).then((d) => d.dir)));
    expect(fs.progress().map((p) => ({ kind: p.kind, dir: p.dir }))).toEqual([
      { kind: "estargz", dir: dirs[0] },
      { kind: "whole", dir: dirs[1] },
      { kind: "whole", dir: dirs[2] },
      { kind: "whole", dir: dirs[3] },
    ]);
    for (const p of fs.progress().slice(1)) expect({ state: p.state, fetched: p.bytesFetched }).toEqual({ state: "complete", fetched: p.bytesTotal });
    const want = [...expected.values()].map(({ ino: _i, ...e }) => e).sort((a, b) => a.path.localeCompare(b.path));
    for (const dir of dirs) {
      console.time(dir);
      const got = await mountSnapshot(dir);
      const rows = [...got.values()].map(({ ino: _i, ...e }) => (e.mode >> 12 === 0o04 ? { ...e, nlink: undefined } : e));
      expect(rows.sort((a, b) => a.path.localeCompare(b.path))).toEqual(want.map((e) => (e.mode >> 12 === 0o04 ? { ...e, nlink: undefined } : e)));
      expect(got.get("etc/hello-hard")!.ino).toBe(got.get("etc/hello")!.ino);
      expect(got.get("etc/hello")!.nlink).toBe(2);
      const xattrs = await sh("python3", ["-c", XATTRS_PY, dir]);
      expect(JSON.parse(xattrs.stdout)).toEqual({ "etc/cap": { "user.lazypull": "tested" } });
      console.timeEnd(dir);
    }
    // a read across chunk boundaries at an odd offset
    const piece = await sh("python3", ["-c", "import sys; f = open(sys.argv[1], 'rb'); f.seek(1048570); print(f.read(20).hex())", join(dirs[0]!, "big.bin")]);
    expect(piece.stdout.trim()).toEqual(big.subarray(1048570, 1048590).toString("hex"));
    const st = await stat(dirs[0]!);
    expect(st.isDirectory()).toBe(true);
    const df = await sh("stat", ["-f", "-c", "%T %l", mnt]);
    expect(df.code).toBe(0);
  });

  it("should read a layer without mounting, fetching only the TOC and the chunks asked for", async () => {
    const remote = await openRemoteLayer({ ref, descriptor: layers[0]! }, { source: client, cache: await openBlobCache({ dir: join(tmp, "cache-remote") }), logger: log });
    try {
      expect(remote.readdir("etc")).toEqual(["cap", "hello", "hello-hard", "hello-sym"]);
      expect(remote.lookup("/etc/hello-sym/")).toMatchObject({ type: "symlink", linkName: "hello" });
      expect((await remote.read("etc/hello")).toString()).toBe("hello, lazy world\n");
      const afterSmall = remote.progress().requests;
      expect((await remote.read("big.bin", 3 * 1024 * 1024 - 10, 20)).equals(big.subarray(3 * 1024 * 1024 - 10, 3 * 1024 * 1024 + 10))).toBe(true);
      const p = remote.progress();
      console.log(`openRemoteLayer: ${p.requests} requests, ${p.bytesFetched} bytes of ${p.bytesTotal}`);
      expect(afterSmall).toBeLessThanOrEqual(2);
      expect(p.requests).toBeLessThanOrEqual(afterSmall + 1);
      await expect(remote.read("nope")).rejects.toMatchObject({ code: "FUSEFS_NOT_FOUND" });
    } finally {
      remote.close();
    }
  });

  it("should verify the TOC digest annotation and need allowUnverified for an unannotated eStargz blob", async () => {
    const c = await openBlobCache({ dir: join(tmp, "cache-verify") });
    const { annotations: _a, ...bare } = layers[0]!;
    const forged = { ...layers[0]!, annotations: { "containerd.io/snapshot/stargz/toc.digest": `sha256:${"0".repeat(64)}` } };
    const err = await openRemoteLayer({ ref, descriptor: forged }, { source: client, cache: c, logger: log }).catch((e: unknown) => e);
    expect(hasCode(err, "FUSEFS_BAD_LAYER")).toBe(true);
    const safe = await openRemoteLayer({ ref, descriptor: bare }, { source: client, cache: c, logger: log });
    const lazy = await openRemoteLayer({ ref, descriptor: bare }, { source: client, cache: c, logger: log, allowUnverified: true });
    expect([safe.kind, lazy.kind]).toEqual(["whole", "estargz"]);
    expect((await lazy.read("etc/hello")).toString()).toBe("hello, lazy world\n");
    safe.close();
    lazy.close();
    await c.close();
  });

  it("should let fuse-overlayfs apply the whiteouts of an upper layer served by the mount", async () => {
    const upperTar = join(tmp, "upper.tar");
    await writeWhiteoutTar(upperTar);
    const esgz = join(tmp, "upper.esgz");
    const res = await convertToEstargz(createReadStream(upperTar), createWriteStream(esgz), {});
    const pushed = await pushImage(client, `${registry.host}/crafted:upper`, [{ path: esgz, ...res }]);
    const upperDir = (await fs!.addLayer({ ref: pushed.ref, descriptor: pushed.layers[0]! })).dir;
    const baseDir = fs!.progress()[0]!.dir;
    const [rw, work, merged] = ["rw", "work", "merged"].map((d) => join(tmp, d)) as [string, string, string];
    for (const d of [rw, work, merged]) await mkdir(d);
    const mounted = await sh("fuse-overlayfs", ["-o", `lowerdir=${upperDir}:${baseDir},upperdir=${rw},workdir=${work}`, merged]);
    expect(mounted.code).toBe(0);
    try {
      const ls = await sh("sh", ["-c", `cd ${merged} && ls -A etc usr && cat usr/new`]);
      expect(ls.stdout).toBe("etc:\ncap\nhello-hard\nhello-sym\n\nusr:\nnew\nnew file\n");
    } finally {
      await sh("fusermount", ["-u", "-z", merged]);
    }
  });

  it("should serve binary xattrs (file capabilities, bytes 0x00 and >= 0x80) of a GNU tar --xattrs layer byte-exactly", async () => {
    // A real file capability (vfs_cap_data; cap_setfcap is bit 31, so a byte 0x80) and a user xattr that
    // is not UTF-8, set on a real file and archived by GNU tar, as an image build would.
    const src = join(tmp, "caps-src");
    await mkdir(join(src, "usr", "bin"), { recursive: true });
    const ping = join(src, "usr", "bin", "ping");
    await writeFile(ping, "#!/bin/sh\necho pong\n");
    await run("setcap", ["cap_net_raw,cap_setfcap+ep", ping]);
    await run("python3", ["-c", "import os, sys; os.setxattr(sys.argv[1], 'user.blob', bytes([0, 0xff, 0x80, 0xc3, 0x28, 0x0a, 0x3d, 0]))", ping]);
    const want = JSON.parse((await run("python3", ["-c", XATTRS_HEX_PY, ping])).stdout) as Record<string, string>;
    expect(Object.keys(want)).toEqual(["security.capability", "user.blob"]);
    expect(want["security.capability"]).toMatch(/^0100000[23]00200080/);
    const capsTar = join(tmp, "caps.tar");
    await run("tar", ["--xattrs", "--xattrs-include=*", "--numeric-owner", "-C", src, "-cf", capsTar, "usr"]);
    const plain = await plainLayers(capsTar);
    const esgz = join(tmp, "caps.esgz");
    const res = await convertToEstargz(createReadStream(capsTar), createWriteStream(esgz), {});
    const pushed = await pushImage(client, `${registry.host}/crafted:caps`, [{ path: esgz, ...res }, plain.gzip, plain.zstd, plain.plain]);
    const dirs = await Promise.all(pushed.layers.map((descriptor) => fs!.addLayer({ ref: pushed.ref, descriptor }).then((d) => d.dir)));
    const got: Record<string, string>[] = [];
    for (const dir of dirs) got.push(JSON.parse((await sh("python3", ["-c", XATTRS_HEX_PY, join(dir, "usr", "bin", "ping")])).stdout));
    expect(got).toEqual([want, want, want, want]);
    for (const p of pushed.layers) fs!.releaseLayer(p.digest);
  });

  it("should count references per layer digest and drop the directory after the last release", async () => {
    const descriptor = layers[1]!;
    const hex = descriptor.digest.slice(7);
    const mnt = fs!.mountpoint;
    expect(await fs!.addLayer({ ref, descriptor })).toEqual({ dir: join(mnt, hex), overlayDir: join(mnt, `${hex}.overlay`) });
    fs!.releaseLayer(descriptor.digest);
    expect((await sh("ls", [mnt])).stdout.split("\n")).toContain(hex);
    fs!.releaseLayer(descriptor.digest);
    expect((await sh("ls", [mnt])).stdout.split("\n")).not.toContain(hex);
    expect(fs!.progress().map((p) => p.digest)).not.toContain(descriptor.digest);
    await expect(fs!.addLayer({ ref, descriptor: { ...descriptor, digest: "md5:xyz" } })).rejects.toMatchObject({ code: "FUSEFS_BAD_LAYER" });
  });
});
