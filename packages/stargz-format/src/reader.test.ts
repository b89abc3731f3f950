import { randomBytes } from "node:crypto";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { convertBuffer, handBlob, makeTar, memRange, sha, type FixtureEntry } from "../test/helpers.js";
import { openStargz, SPECULATIVE_TAIL } from "./reader.js";
import { StreamByteSource } from "./byte-source.js";
import { STREAM_MEMBER_BYTES } from "./writer.js";
import { readTar } from "./tar/reader.js";
import type { StargzReader, TocEntry } from "./types.js";

const big = Buffer.from(Array.from({ length: 10_000 }, (_, i) => (i * 7919) % 251));
const files: FixtureEntry[] = [
  { header: { name: "./", type: "dir", mode: 0o755 } },
  { header: { name: "./etc/", type: "dir", mode: 0o755 } },
  { header: { name: "./etc/hosts", type: "reg", mode: 0o644, mtime: 1700000000 }, data: Buffer.from("127.0.0.1 localhost\n") },
  { header: { name: "./etc/empty", type: "reg", mode: 0o600, uid: 7, gid: 8 }, data: Buffer.alloc(0) },
  { header: { name: "./usr/bin/big", type: "reg", mode: 0o755 }, data: big },
  { header: { name: "./usr/bin/big2", type: "hardlink", linkName: "./usr/bin/big" } },
  { header: { name: "./etc/link", type: "symlink", linkName: "hosts" } },
  { header: { name: "./etc/.wh.gone", type: "reg" }, data: Buffer.alloc(0) },
  { header: { name: "./dev/null", type: "char", devMajor: 1, devMinor: 3, mode: 0o666 } },
  { header: { name: "./x", type: "reg", xattrs: { "user.a": Buffer.from([0, 1, 2]) } }, data: Buffer.from("x") },
];

async function readAll(r: StargzReader): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const n of r.walk()) if (n.type === "reg") out[n.path] = sha(await r.readFile(n.path));
  return out;
}

const expectedContents = {
  "etc/.wh.gone": sha(""),
  "etc/empty": sha(""),
  "etc/hosts": sha("127.0.0.1 localhost\n"),
  "usr/bin/big": sha(big),
  "usr/bin/big2": sha(big),
  x: sha("x"),
};

describe("convert + open", () => {
  it("should open a blob with one range read and answer lookup, readdir, readlink, hardlinks and xattrs", async () => {
    const { blob, result } = await convertBuffer(makeTar(files), { chunkSize: 4096 });
    const range = memRange(blob);
    const r = await openStargz(range, { expectedTocDigest: result.tocDigest });
    expect(range.reads.length).toEqual(1);
    expect(r.format).toEqual("estargz");
    expect(r.readdir("")).toEqual(["dev", "etc", "usr", "x"]);
    expect(r.readdir("/etc/")).toEqual([".wh.gone", "empty", "hosts", "link"]);
    expect(r.lookup("etc/link")).toMatchObject({ type: "symlink", linkName: "hosts", size: 5 });
    expect(r.lookup("./etc/empty")).toMatchObject({ type: "reg", mode: 0o600, uid: 7, gid: 8, size: 0, digest: sha("") });
    expect(r.lookup("etc/hosts")!.mtimeMs).toEqual(1700000000_000);
    expect(r.lookup("dev/null")).toMatchObject({ type: "char", devMajor: 1, devMinor: 3, mode: 0o666 });
    expect(r.lookup("x")!.xattrs).toEqual({ "user.a": Buffer.from([0, 1, 2]) });
    const a = r.lookup("usr/bin/big")!;
    const b = r.lookup("usr/bin/big2")!;
    expect([a.nlink, b.nlink, a.ino === b.ino, b.path]).toEqual([2, 2, true, "usr/bin/big2"]);
    expect(r.lookup("usr")).toMatchObject({ type: "dir", mode: 0o755, nlink: 3 }); // implicit dir
    expect(await readAll(r)).toEqual(expectedContents);
    expect([...r.walk()].map((n) => n.path)).toEqual(["", "dev", "etc", "usr", "x", "dev/null", "etc/.wh.gone", "etc/empty", "etc/hosts", "etc/link", "usr/bin", "usr/bin/big", "usr/bin/big2"]);
    // counted without a walk: implicit directories (usr, usr/bin) and the hardlink name included
    expect(r.nodeCount).toBe(13);
  });

  it("should split big files into chunks and return only the chunks a range needs", async () => {
    const { blob } = await convertBuffer(makeTar(files), { chunkSize: 4096 });
    const r = await openStargz(memRange(blob));
    const chunks = r.chunksFor("usr/bin/big2", 4000, 200);
    expect(chunks.map((c) => [c.path, c.fileOffset, c.size])).toEqual([["usr/bin/big", 0, 4096], ["usr/bin/big", 4096, 4096]]);
    expect(r.chunksFor("usr/bin/big", 0, 1e9).map((c) => c.size)).toEqual([4096, 4096, 1808]);
    expect(chunks.every((c) => c.compressedEnd > c.compressedOffset && c.innerOffset === 0 && c.chunkDigest !== undefined)).toBe(true);
    expect(await r.readFile("usr/bin/big", 4000, 200)).toEqual(big.subarray(4000, 4200));
    const toc = await r.readToc();
    const tocEntries = toc.entries.filter((e) => e.name === "usr/bin/big");
    expect(tocEntries.map((e) => [e.type, e.chunkOffset, e.chunkSize])).toEqual([["reg", undefined, 4096], ["chunk", 4096, 4096], ["chunk", 8192, 1808]]);
    expect(toc.entries.some((e) => e.innerOffset !== undefined)).toBe(false);
  });

  it("should write a chunk bigger than STREAM_MEMBER_BYTES as one streamed member, and refuse to read it whole past maxChunkBytes", async () => {
    const huge = Buffer.alloc(STREAM_MEMBER_BYTES * 2 + 12345, 7);
    randomBytes(4096).copy(huge, STREAM_MEMBER_BYTES - 2048);
    const tar = makeTar([...files, { header: { name: "./huge", type: "reg", mode: 0o644 }, data: huge }]);
    const { blob, result } = await convertBuffer(tar, { chunkSize: 1 << 30, level: 1 });
    expect(sha(gunzipSync(blob))).toEqual(result.diffId);
    const r = await openStargz(memRange(blob), { expectedTocDigest: result.tocDigest });
    const chunks = r.chunksFor("huge", 0, huge.length);
    expect(chunks.map((c) => [c.size, c.chunkDigest])).toEqual([[huge.length, sha(huge)]]);
    expect(r.lookup("huge")).toMatchObject({ size: huge.length, digest: sha(huge) });
    expect(await r.readFile("huge", STREAM_MEMBER_BYTES - 4096, 8192)).toEqual(huge.subarray(STREAM_MEMBER_BYTES - 4096, STREAM_MEMBER_BYTES + 4096));
    expect(await readAll(r)).toMatchObject(expectedContents);
    const bounded = await openStargz(memRange(blob), { maxChunkBytes: STREAM_MEMBER_BYTES });
    await expect(bounded.readFile("huge", 0, 10)).rejects.toMatchObject({ code: "ESTARGZ_CHUNK_TOO_LARGE", context: { size: huge.length, maxChunkBytes: STREAM_MEMBER_BYTES } });
    expect(await bounded.readFile("etc/hosts")).toEqual(Buffer.from("127.0.0.1 localhost\n"));
  });

  it("should produce a valid tar.gz: the landmark first, the input entries, then the TOC", async () => {
    const { blob, result } = await convertBuffer(makeTar(files));
    const tar = gunzipSync(blob);
    expect(tar.length).toEqual(result.uncompressedSize);
    expect(sha(tar)).toEqual(result.diffId);
    expect(sha(blob)).toEqual(result.blobDigest);
    const names: string[] = [];
    for await (const e of readTar(new StreamByteSource([tar][Symbol.iterator]() as never))) names.push(e.header.name);
    expect(names).toEqual([".no.prefetch.landmark", ...files.map((f) => f.header.name), "stargz.index.json"]);
  });

  it("should give byte-identical output for the same input and options", async () => {
    const tar = makeTar(files);
    const [a, b] = await Promise.all([convertBuffer(tar, { chunkSize: 1000, concurrency: 3 }), convertBuffer(tar, { chunkSize: 1000, concurrency: 1 })]);
    expect(a.blob.equals(b.blob)).toBe(true);
    expect(a.result).toEqual(b.result);
  });

  it("should put prioritised files (with their parents and hardlink targets) before .prefetch.landmark", async () => {
    const { blob, result } = await convertBuffer(makeTar(files), { prioritizedFiles: ["usr/bin/big2", "./etc/hosts", "nope"] });
    const r = await openStargz(memRange(blob));
    expect(result.missingPrioritized).toEqual(["nope"]);
    const toc = await r.readToc();
    expect(toc.entries.map((e) => e.name)).toEqual(["./", "usr/bin/big", "usr/bin/big2", "etc", "etc/hosts", ".prefetch.landmark", "etc/empty", "etc/link", "etc/.wh.gone", "dev/null", "x"]);
    const landmark = toc.entries.find((e) => e.name === ".prefetch.landmark")!;
    expect(r.prefetchEnd).toEqual(landmark.offset);
    expect(r.lookup(".prefetch.landmark")).toBeUndefined();
    expect(await readAll(r)).toEqual(expectedContents);
  });

  it("should read gzip and zstd input the same as plain tar", async () => {
    const { gzipSync } = await import("node:zlib");
    const { execFileSync } = await import("node:child_process");
    const tar = makeTar(files);
    const plain = await convertBuffer(tar);
    const gz = await convertBuffer(Buffer.concat([gzipSync(tar.subarray(0, 5000)), gzipSync(tar.subarray(5000))]));
    const zst = await convertBuffer(execFileSync("zstd", ["-q", "-c"], { input: tar }));
    expect(gz.blob.equals(plain.blob)).toBe(true);
    expect(zst.blob.equals(plain.blob)).toBe(true);
  });
});

describe("blobs from other writers", () => {
  const hand: Parameters<typeof handBlob>[0] = [
    { name: "./", type: "dir", mode: 0o755 },
    { name: "./bin/", type: "dir", mode: 0o755 },
    { name: "./bin/sh", type: "reg", mode: 0o755, data: big },
    { name: "./bin/exact", type: "reg", mode: 0o644, data: big.subarray(0, 4096) },
    { name: "./bin/zero", type: "reg", data: Buffer.alloc(0) },
    { name: "./bin/ln", type: "hardlink", linkName: "./bin/sh" },
    { name: "./bin/s", type: "symlink", linkName: "/bin/sh", uid: 5 },
  ];

  it("should read containerd-converter layouts: ./ names, dirs with /, omitted zero fields, last chunk without chunkSize", async () => {
    const { blob, tocDigest, toc } = handBlob(hand, { chunkSize: 4096 });
    expect(toc.entries.filter((e) => e.name === "./bin/sh").map((e) => e.chunkSize)).toEqual([4096, 4096, undefined]);
    expect(toc.entries.find((e) => e.name === "./bin/zero")).toEqual({ name: "./bin/zero", type: "reg", modtime: "1970-01-01T00:00:00Z", digest: sha("") });
    const r = await openStargz(memRange(blob), { expectedTocDigest: tocDigest });
    expect(r.readdir("bin")).toEqual(["exact", "ln", "s", "sh", "zero"]);
    expect(r.lookup("bin/zero")).toMatchObject({ mode: 0, uid: 0, gid: 0, size: 0 });
    expect(r.lookup("bin/s")).toMatchObject({ type: "symlink", linkName: "/bin/sh", uid: 5 });
    expect(r.lookup("bin/ln")!.nlink).toEqual(2);
    expect(r.chunksFor("bin/exact", 0, 1e9).map((c) => c.size)).toEqual([4096]);
    expect(await readAll(r)).toEqual({ "bin/exact": sha(big.subarray(0, 4096)), "bin/ln": sha(big), "bin/sh": sha(big), "bin/zero": sha("") });
  });

  it("should give back the TOC exactly as written from readToc(), decoded anew on each call, and keep no parsed TOC", async () => {
    const { blob, toc } = handBlob(hand, { chunkSize: 4096 });
    const r = await openStargz(memRange(blob));
    const [a, b] = [await r.readToc(), await r.readToc()];
    expect(a).toEqual(toc);
    expect(b).toEqual(toc);
    expect(a === b || a.entries === b.entries).toBe(false);
    expect(Object.keys(r)).not.toContain("toc");
    expect(r.readdir("bin")).toEqual(["exact", "ln", "s", "sh", "zero"]);
  });

  it("should answer lookup and walk with plain FileNode values: exactly its fields, in order, nothing of the reader's own", async () => {
    const { blob } = handBlob(hand, { chunkSize: 4096 });
    const r = await openStargz(memRange(blob));
    const sh = r.lookup("bin/sh")!;
    const expected = { path: "bin/sh", type: "reg", mode: 0o755, uid: 0, gid: 0, size: big.length, mtimeMs: 0, xattrs: {}, nlink: 2, ino: sh.ino, digest: sha(big) };
    expect(sh).toEqual(expected);
    expect(Object.keys(sh)).toEqual(Object.keys(expected));
    expect(JSON.parse(JSON.stringify(r.lookup("bin/ln")))).toEqual({ ...expected, path: "bin/ln", xattrs: {} });
    expect({ ...r.lookup("bin") }).toEqual({ path: "bin", type: "dir", mode: 0o755, uid: 0, gid: 0, size: 0, mtimeMs: 0, xattrs: {}, nlink: 2, ino: r.lookup("bin")!.ino });
    expect([...r.walk()].find((n) => n.path === "bin/sh")).toEqual(expected);
  });

  it("should read legacy CRFS stargz blobs with the 47-byte footer and no chunk digests", async () => {
    const { blob } = handBlob(hand, { chunkSize: 4096, legacy: true });
    const r = await openStargz(memRange(blob));
    expect(r.format).toEqual("stargz");
    expect(r.prefetchEnd).toEqual(0);
    expect(r.chunksFor("bin/sh", 0, 10)[0]!.chunkDigest).toBeUndefined();
    expect(await r.readFile("bin/sh")).toEqual(big);
  });

  it("should fetch a TOC bigger than 1 MiB with exactly two range reads", async () => {
    const many: Parameters<typeof handBlob>[0] = Array.from({ length: 5000 }, (_, i) => ({ name: `./d/${i}`, type: "symlink" as const, linkName: `t${i}` }));
    // incompressible user names push the compressed TOC past the 1 MiB speculative tail
    const { blob, tocOffset } = handBlob(many, { chunkSize: 4096, tocOverride: (toc: { entries: TocEntry[] }) => toc.entries.forEach((e) => (e.userName = randomBytes(200).toString("base64"))) });
    expect(blob.length - tocOffset).toBeGreaterThan(SPECULATIVE_TAIL);
    const range = memRange(blob);
    const r = await openStargz(range);
    expect(range.reads.length).toEqual(2);
    expect(r.readdir("d")!.length).toEqual(5000);
  });
});
