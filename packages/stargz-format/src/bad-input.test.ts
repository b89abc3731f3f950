import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { convertBuffer, handBlob, makeTar, memRange, type HandFile } from "../test/helpers.js";
import { estargzFooter } from "./footer.js";
import { openStargz } from "./reader.js";
import { emptyHeader, encodeHeader } from "./tar/header.js";
import type { OpenOptions, RangeReader, TocEntry } from "./types.js";

const data = Buffer.from("the quick brown fox jumps over the lazy dog\n".repeat(100));
const base: HandFile[] = [
  { name: "./", type: "dir", mode: 0o755 },
  { name: "./a", type: "reg", data, mode: 0o644 },
  { name: "./b", type: "reg", data: Buffer.from("tail file"), mode: 0o644 },
];

type Toc = { version: number; entries: TocEntry[] };
const blobWith = (mutate: (toc: Toc) => void, files = base): Buffer => handBlob(files, { chunkSize: 1024, tocOverride: mutate }).blob;

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code !== "string") throw err; // an untyped error is a bug
    return code;
  }
}

const open = (blob: Buffer, opts?: OpenOptions) => openStargz(memRange(blob), opts);
const openAndRead = async (blob: Buffer) => {
  const r = await open(blob);
  for (const n of r.walk()) if (n.type === "reg") await r.readFile(n.path);
};

function tocMember(content: Buffer, name = "stargz.index.json"): Buffer {
  const h = emptyHeader(name, "reg");
  h.size = content.length;
  return gzipSync(Buffer.concat([encodeHeader(h), content, Buffer.alloc(1024 + ((512 - (content.length % 512)) % 512))]));
}

describe("hostile and broken blobs", () => {
  const good = handBlob(base, { chunkSize: 1024 });

  it("should reject truncated blobs and bad footers", async () => {
    const shortReads: RangeReader = { size: good.blob.length, read: async (o, l) => good.blob.subarray(o, o + Math.floor(l / 2)) };
    const pastEnd = Buffer.concat([good.blob.subarray(0, good.blob.length - 51), estargzFooter(good.blob.length)]);
    expect(
      await Promise.all([
        codeOf(open(good.blob.subarray(0, good.blob.length - 10))),
        codeOf(open(good.blob.subarray(0, 30))),
        codeOf(openStargz(shortReads)),
        codeOf(open(Buffer.alloc(4096, 0x41))),
        codeOf(open(pastEnd)),
      ]),
    ).toEqual(["ESTARGZ_BAD_FOOTER", "ESTARGZ_TRUNCATED", "ESTARGZ_TRUNCATED", "ESTARGZ_BAD_FOOTER", "ESTARGZ_BAD_FOOTER"]);
  });

  it("should reject corrupt TOCs: bad gzip, not JSON, wrong member name, wrong shape, digest mismatch", async () => {
    const corruptGz = Buffer.from(good.blob);
    corruptGz[good.tocOffset + 30]! ^= 0xff;
    const withMember = (m: Buffer) => Buffer.concat([good.blob.subarray(0, good.tocOffset), m, estargzFooter(good.tocOffset)]);
    expect(
      await Promise.all([
        codeOf(open(corruptGz)),
        codeOf(open(withMember(tocMember(Buffer.from("{not json"))))),
        codeOf(open(withMember(tocMember(Buffer.from("{}"), "other.json")))),
        codeOf(open(withMember(tocMember(Buffer.from('{"version":1,"entries":{}}'))))),
        codeOf(open(withMember(Buffer.from("not gzip at all")))),
        codeOf(open(good.blob, { expectedTocDigest: `sha256:${"0".repeat(64)}` })),
        codeOf(open(good.blob, { expectedTocDigest: good.tocDigest })),
      ]),
    ).toEqual(["ESTARGZ_BAD_TOC", "ESTARGZ_BAD_TOC", "ESTARGZ_BAD_TOC", "ESTARGZ_BAD_TOC", "ESTARGZ_BAD_TOC", "ESTARGZ_TOC_DIGEST_MISMATCH", "ok"]);
  });

  it("should refuse a gigantic TOC (inflation bomb) without inflating it all", async () => {
    const bomb = tocMember(Buffer.alloc(8 << 20, 0x20));
    const blob = Buffer.concat([good.blob.subarray(0, good.tocOffset), bomb, estargzFooter(good.tocOffset)]);
    expect(await Promise.all([codeOf(open(blob, { maxTocBytes: 1 << 20 })), codeOf(open(good.blob, { maxTocBytes: 100 }))])).toEqual([
      "ESTARGZ_TOC_TOO_LARGE",
      "ESTARGZ_TOC_TOO_LARGE",
    ]);
  });

  it("should reject hostile TOC entries with a code naming the entry", async () => {
    const entry = (name: string) => (t: Toc) => t.entries.find((e) => e.name === name)!;
    const cases: Array<[string, (t: Toc) => void]> = [
      ["dotdot", (t) => (entry("./a")(t).name = "../../etc/passwd")],
      ["abs dotdot", (t) => (entry("./a")(t).name = "/../etc/passwd")],
      ["offset past TOC", (t) => (entry("./b")(t).offset = 1e9)],
      ["negative offset", (t) => (entry("./b")(t).offset = -1)],
      ["size larger than chunks", (t) => (entry("./a")(t).size = data.length + 5000)],
      ["chunkSize lies", (t) => (entry("./a")(t).chunkSize = 999)],
      ["duplicate", (t) => t.entries.push({ ...entry("./b")(t) })],
      ["file over dir", (t) => t.entries.push({ name: "./", type: "reg" })],
      ["hardlink cycle", (t) => t.entries.push({ name: "x", type: "hardlink", linkName: "y" }, { name: "y", type: "hardlink", linkName: "x" })],
      ["dangling hardlink", (t) => t.entries.push({ name: "x", type: "hardlink", linkName: "nope" })],
      ["hardlink escape", (t) => t.entries.push({ name: "x", type: "hardlink", linkName: "../a" })],
      ["unknown type", (t) => t.entries.push({ name: "x", type: "socket" as never })],
      ["not an object", (t) => t.entries.push(null as never)],
      ["file as parent", (t) => t.entries.push({ name: "a/child", type: "reg" })],
      ["chunk without file", (t) => t.entries.push({ name: "zzz", type: "chunk", offset: 10 })],
    ];
    const results = await Promise.all(cases.map(async ([what, m]) => [what, await codeOf(open(blobWith(m)))]));
    expect(Object.fromEntries(results)).toEqual({
      dotdot: "ESTARGZ_UNSAFE_NAME",
      "abs dotdot": "ESTARGZ_UNSAFE_NAME",
      "offset past TOC": "ESTARGZ_BAD_OFFSET",
      "negative offset": "ESTARGZ_BAD_ENTRY",
      "size larger than chunks": "ESTARGZ_BAD_SIZE",
      "chunkSize lies": "ESTARGZ_BAD_SIZE",
      duplicate: "ESTARGZ_DUPLICATE_ENTRY",
      "file over dir": "ESTARGZ_DUPLICATE_ENTRY",
      "hardlink cycle": "ESTARGZ_HARDLINK_CYCLE",
      "dangling hardlink": "ESTARGZ_BAD_HARDLINK",
      "hardlink escape": "ESTARGZ_BAD_HARDLINK",
      "unknown type": "ESTARGZ_BAD_ENTRY",
      "not an object": "ESTARGZ_BAD_ENTRY",
      "file as parent": "ESTARGZ_BAD_ENTRY",
      "chunk without file": "ESTARGZ_BAD_ENTRY",
    });
    const err = (await open(blobWith(cases[0]![1])).catch((e: Error) => e)) as Error;
    expect(err.message).toContain('"../../etc/passwd"');
  });

  it("should never serve bytes that do not match: lying sizes, wrong digests, corrupt members", async () => {
    const corruptChunk = Buffer.from(good.blob);
    const aOffset = good.toc.entries.find((e) => e.name === "./a")!.offset!;
    corruptChunk[aOffset + 40]! ^= 0x55;
    // legacy blobs have no digests: a lying size is still caught when the member is too short
    const lyingLegacy = handBlob(base, { chunkSize: 1 << 20, legacy: true, tocOverride: (t) => (t.entries.find((e) => e.name === "./b")!.size = 5000) }).blob;
    expect(
      await Promise.all([
        codeOf(openAndRead(blobWith((t) => (t.entries.find((e) => e.name === "./b")!.chunkDigest = `sha256:${"1".repeat(64)}`)))),
        codeOf(openAndRead(blobWith((t) => (t.entries.find((e) => e.name === "./b")!.size = 3000)))),
        codeOf(openAndRead(corruptChunk)),
        codeOf(openAndRead(lyingLegacy)),
      ]),
    ).toEqual(["ESTARGZ_CHUNK_DIGEST_MISMATCH", "ESTARGZ_CHUNK_SIZE_MISMATCH", "ESTARGZ_CHUNK_CORRUPT", "ESTARGZ_CHUNK_SIZE_MISMATCH"]);
  });

  it("should accept a directory listed twice (later attributes win) and refuse to convert a file listed twice", async () => {
    const twiceDir = blobWith((t) => t.entries.push({ name: "./", type: "dir", mode: 0o700 }));
    expect((await open(twiceDir)).lookup("")!.mode).toEqual(0o700);
    const tar = makeTar([
      { header: { name: "f", type: "reg" }, data: Buffer.from("1") },
      { header: { name: "./f", type: "reg" }, data: Buffer.from("2") },
    ]);
    expect(await codeOf(convertBuffer(tar))).toEqual("CONVERT_BAD_INPUT");
  });

  it("should refuse to convert a PAX sparse file rather than store its sparse map as contents", async () => {
    const tar = makeTar([
      { header: { name: "ok", type: "reg" }, data: Buffer.from("fine") },
      { header: { name: "holes", type: "reg", pax: { "GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": "holes", "GNU.sparse.realsize": "1048576" } }, data: Buffer.from("1\n0\n4\nabcd") },
    ]);
    const err = await convertBuffer(tar).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "TAR_UNSUPPORTED_ENTRY", context: { entry: "holes" } });
  });
});
