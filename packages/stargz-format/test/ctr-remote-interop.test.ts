/**
 * Interoperability with containerd's eStargz converter (`ctr-remote`, Debian stargz-snapshotter) and
 * containerd's ordinary unpack, on a private containerd (temp root, own socket; no CRI, no snapshots
 * mounted: the `native` snapshotter only copies files).
 */
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { link, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convertToEstargz, normalizeName, openStargz, type StargzReader } from "../src/index.js";
import { memRange } from "./helpers.js";
import { createReadStream, createWriteStream } from "node:fs";
import { debianRootfsTar } from "@lazypull/testkit";
import { fileRangeReader } from "../src/index.js";

const run = promisify(execFile);
const sha256 = (b: Buffer | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const CHUNK = 65536;

/** Deterministic pseudo-random bytes (incompressible enough to make several chunks). */
function noise(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

const FILES: Record<string, Buffer> = {
  "usr/bin/big": noise(300_000, 1),
  "usr/bin/exact": noise(CHUNK, 2),
  "etc/hosts": Buffer.from("127.0.0.1 localhost\n"),
  "etc/empty": Buffer.alloc(0),
  "etc/.wh.gone": Buffer.alloc(0),
  "opt/.wh..wh..opq": Buffer.alloc(0),
  [`opt/${"long-name-".repeat(15)}x`]: Buffer.from("long"),
};

interface OciBlob {
  digest: string;
  bytes: Buffer;
}

/** An OCI image layout tar with one layer, for `ctr images import`. */
async function ociArchive(dir: string, layer: Buffer, diffId: string, annotations?: Record<string, string>): Promise<string> {
  const root = await mkdtemp(join(dir, "oci-"));
  await mkdir(join(root, "blobs", "sha256"), { recursive: true });
  const put = async (bytes: Buffer): Promise<OciBlob> => {
    const digest = sha256(bytes);
    await writeFile(join(root, "blobs", "sha256", digest.slice(7)), bytes);
    return { digest, bytes };
  };
  const l = await put(layer);
  const cfg = await put(Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [diffId] }, config: {} })));
  const man = await put(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: cfg.digest, size: cfg.bytes.length },
        layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: l.digest, size: layer.length, ...(annotations ? { annotations } : {}) }],
      }),
    ),
  );
  await writeFile(
    join(root, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: man.digest, size: man.bytes.length, annotations: { "org.opencontainers.image.ref.name": "latest" }, platform: { architecture: "amd64", os: "linux" } },
      ],
    }),
  );
  await writeFile(join(root, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}');
  const out = `${root}.tar`;
  await run("tar", ["-cf", out, "-C", root, "."]);
  return out;
}

describe("interop with containerd's eStargz converter (ctr-remote)", () => {
  let dir: string;
  let daemon: ChildProcess | undefined;
  let sock: string;
  let layerGz: Buffer;
  let theirs: { blob: Buffer; tocDigest: string; uncompressedSize: number };
  const ctr = (...args: string[]) => run("ctr-remote", ["-a", sock, "-n", "lazypull-test", ...args], { maxBuffer: 64 << 20 });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "lazypull-ctr-"));
    sock = join(dir, "containerd.sock");
    await writeFile(
      join(dir, "config.toml"),
      [
        "version = 2",
        `root = "${dir}/root"`,
        `state = "${dir}/state"`,
        'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.overlayfs"]',
        "[grpc]",
        `  address = "${sock}"`,
        "[ttrpc]",
        `  address = "${sock}.ttrpc"`,
      ].join("\n"),
    );
    daemon = spawn("containerd", ["--config", join(dir, "config.toml")], { stdio: ["ignore", "ignore", "pipe"] });
    let log = "";
    daemon.stderr!.on("data", (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
    for (let i = 0; !existsSync(sock); i++) {
      if (i > 200 || daemon.exitCode !== null) throw new Error(`containerd did not start: ${log}`);
      await new Promise((r) => setTimeout(r, 100));
    }

    const src = join(dir, "src");
    for (const [p, data] of Object.entries(FILES)) {
      await mkdir(join(src, p, ".."), { recursive: true });
      await writeFile(join(src, p), data);
    }
    await link(join(src, "usr/bin/big"), join(src, "usr/bin/hard"));
    await symlink("../../etc/hosts", join(src, "usr/bin/link"));
    await run("tar", ["--numeric-owner", "--owner=0", "--group=0", "--mtime=@1700000000", "-czf", join(dir, "layer.tar.gz"), "-C", src, "."]);
    layerGz = await readFile(join(dir, "layer.tar.gz"));

    const t = await ctrConvert("src", layerGz, ["--estargz-chunk-size", String(CHUNK)]);
    theirs = { blob: await readFile(t.path), tocDigest: t.tocDigest, uncompressedSize: t.uncompressedSize };
  });

  afterAll(async () => {
    if (daemon && daemon.exitCode === null) {
      daemon.kill("SIGTERM");
      await new Promise((r) => daemon!.once("exit", r));
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** import a tar.gz layer, let ctr-remote convert it, return its blob and annotations */
  async function ctrConvert(name: string, layer: Buffer, extra: string[] = []) {
    await ctr("images", "import", "--no-unpack", "--base-name", `example.com/${name}`, await ociArchive(dir, layer, sha256(gunzipSync(layer))));
    await ctr("images", "convert", "--estargz", "--oci", ...extra, `example.com/${name}:latest`, `example.com/${name}-esgz:latest`);
    const tarPath = join(dir, `${name}-esgz.tar`);
    await ctr("images", "export", tarPath, `example.com/${name}-esgz:latest`);
    const out = join(dir, `${name}-esgz`);
    await mkdir(out);
    await run("tar", ["-xf", tarPath, "-C", out]);
    const blob = (d: string) => join(out, "blobs", "sha256", d.slice(7));
    const index = JSON.parse((await readFile(join(out, "index.json"))).toString());
    const manifest = JSON.parse((await readFile(blob(index.manifests[0].digest))).toString());
    const l = manifest.layers[0];
    return { path: blob(l.digest), tocDigest: l.annotations["containerd.io/snapshot/stargz/toc.digest"] as string, uncompressedSize: Number(l.annotations["io.containers.estargz.uncompressed-size"]) };
  }

  async function contents(r: StargzReader): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const n of r.walk()) if (n.type === "reg") out[n.path] = sha256(await r.readFile(n.path));
    return out;
  }
  const expected = () => ({
    ...Object.fromEntries(Object.entries(FILES).map(([p, d]) => [p, sha256(d)])),
    "usr/bin/hard": sha256(FILES["usr/bin/big"]!),
  });

  it("should read blobs written by ctr-remote and verify their TOC against the manifest annotation", async () => {
    const r = await openStargz(memRange(theirs.blob), { expectedTocDigest: theirs.tocDigest, label: "ctr-remote" });
    expect(r.format).toEqual("estargz");
    expect((await r.readToc()).entries.filter((e) => e.type === "chunk").length).toBeGreaterThan(3);
    expect(gunzipSync(theirs.blob).length).toEqual(theirs.uncompressedSize);
    expect(await contents(r)).toEqual(expected());
    expect(r.lookup("usr/bin/link")).toMatchObject({ type: "symlink", linkName: "../../etc/hosts" });
    expect(r.lookup("usr/bin/hard")!.nlink).toEqual(2);
  });

  const shape = async (r: StargzReader) => ({
    order: (await r.readToc()).entries.map((e) => [normalizeName(e.name), e.type]),
    nodes: [...r.walk()].map((n) => ({ ...n, ino: 0, xattrs: Object.keys(n.xattrs) })),
    chunks: r.allChunks().map((c) => [c.path, c.fileOffset, c.size, c.chunkDigest]),
  });

  it("should write the same TOC content as ctr-remote for the same layer: entries, chunk layout, digests", async () => {
    const chunks: Buffer[] = [];
    const sink = new (await import("node:stream")).Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) });
    await convertToEstargz((await import("node:stream")).Readable.from([layerGz]), sink, { chunkSize: CHUNK });
    const ours = await openStargz(memRange(Buffer.concat(chunks)));
    const them = await openStargz(memRange(theirs.blob));
    expect(await shape(ours)).toEqual(await shape(them));
  });

  it("should produce blobs containerd unpacks as an ordinary tar.gz layer, matching our diffID", async () => {
    const esgz = join(dir, "ours.esgz");
    const result = await convertToEstargz(createReadStream(join(dir, "layer.tar.gz")), createWriteStream(esgz), { chunkSize: CHUNK });
    const archive = await ociArchive(dir, await readFile(esgz), result.diffId, {
      "containerd.io/snapshot/stargz/toc.digest": result.tocDigest,
      "io.containers.estargz.uncompressed-size": String(result.uncompressedSize),
    });
    // unpacking makes containerd gunzip the blob and check the uncompressed digest against diff_ids
    await ctr("images", "import", "--snapshotter", "native", "--base-name", "example.com/ours", archive);
    const { stdout } = await ctr("snapshots", "--snapshotter", "native", "ls");
    expect(stdout.split("\n").filter((l) => l.startsWith("sha256:")).map((l) => l.split(/\s+/)[0])).toEqual([result.diffId]);
  });

  it("should agree with ctr-remote on the Debian rootfs: same TOC content, and its blob reads back", async () => {
    const gz = join(dir, "debian.tar.gz");
    await run("sh", ["-c", `gzip -1 -c '${await debianRootfsTar()}' > '${gz}'`]);
    const t = await ctrConvert("debian", await readFile(gz), ["--estargz-compression-level", "1"]);
    const ourPath = join(dir, "debian.esgz");
    await convertToEstargz(createReadStream(gz), createWriteStream(ourPath), { level: 1 });
    const [theirFile, ourFile] = await Promise.all([fileRangeReader(t.path), fileRangeReader(ourPath)]);
    try {
      const them = await openStargz(theirFile, { expectedTocDigest: t.tocDigest, label: "ctr-remote debian" });
      const ours = await openStargz(ourFile);
      expect(await shape(ours)).toEqual(await shape(them));
      for (const path of ["usr/bin/bash", "usr/lib/x86_64-linux-gnu/libc.so.6", "etc/passwd"]) {
        expect((await them.readFile(path)).equals(await ours.readFile(path))).toBe(true);
      }
    } finally {
      await Promise.all([theirFile.close(), ourFile.close()]);
    }
  });
});
