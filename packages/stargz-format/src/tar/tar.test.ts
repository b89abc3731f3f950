import { describe, expect, it } from "vitest";
import { StreamByteSource } from "../byte-source.js";
import { BLOCK, emptyHeader, encodeHeader, END_OF_ARCHIVE, padding, type TarHeader } from "./header.js";
import { readTar, type ReadTarOptions, type UnsupportedTarEntry } from "./reader.js";

async function parse(tar: Buffer, opts?: ReadTarOptions): Promise<Array<{ header: TarHeader; data: Buffer }>> {
  const out: Array<{ header: TarHeader; data: Buffer }> = [];
  async function* one() {
    // odd-sized pieces exercise the source's buffering
    for (let i = 0; i < tar.length; i += 777) yield tar.subarray(i, i + 777);
  }
  for await (const e of readTar(new StreamByteSource(one()), opts)) out.push({ header: e.header, data: await e.read(e.header.size) });
  return out;
}

function h(over: Partial<TarHeader> & Pick<TarHeader, "name" | "type">): TarHeader {
  return { ...emptyHeader(over.name, over.type), ...over };
}

/** A header block with another type flag (and the checksum fixed), e.g. for types encodeHeader never writes. */
function retyped(block: Buffer, flag: string, edit?: (b: Buffer) => void): Buffer {
  const b = Buffer.from(block);
  b.write(flag, 156, "latin1");
  edit?.(b);
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i]!;
  b.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "latin1");
  return b;
}

function tarOf(entries: Array<{ header: TarHeader; data?: Buffer }>): Buffer {
  return Buffer.concat([
    ...entries.flatMap((e) => [encodeHeader(e.header), e.data ?? Buffer.alloc(0), Buffer.alloc(padding(e.data?.length ?? 0))]),
    END_OF_ARCHIVE,
  ]);
}

describe("tar", () => {
  it("should round-trip every entry type, whiteouts, PAX long names, big ids, sub-second mtimes and xattrs", async () => {
    const longDir = `${"d".repeat(120)}/${"e".repeat(120)}`;
    const entries = [
      { header: h({ name: "./", type: "dir", mode: 0o755, mtime: 1700000000 }) },
      { header: h({ name: "./a/", type: "dir", mode: 0o1777, uid: 1000, gid: 1000, uname: "user", gname: "group" }) },
      { header: h({ name: "./a/file", type: "reg", size: 5, mode: 0o4755, mtime: 1700000000.5 }), data: Buffer.from("hello") },
      { header: h({ name: "./a/hard", type: "hardlink", linkName: "./a/file" }) },
      { header: h({ name: "./a/sym", type: "symlink", linkName: `../${"x".repeat(150)}` }) },
      { header: h({ name: "./dev/null", type: "char", devMajor: 1, devMinor: 3, mode: 0o666 }) },
      { header: h({ name: "./dev/sda", type: "block", devMajor: 8, devMinor: 0 }) },
      { header: h({ name: "./fifo", type: "fifo" }) },
      { header: h({ name: "./a/.wh.gone", type: "reg" }), data: Buffer.alloc(0) },
      { header: h({ name: "./a/.wh..wh..opq", type: "reg" }), data: Buffer.alloc(0) },
      { header: h({ name: `./${longDir}/f`, type: "reg", uid: 3_000_000, gid: 4_000_000 }), data: Buffer.from("x") },
      { header: h({ name: `./${"p".repeat(150)}/short`, type: "reg" }), data: Buffer.from("prefix split") },
      { header: h({ name: "./üñí", type: "reg", uname: "u".repeat(40), xattrs: { "security.capability": Buffer.from([1, 0, 0, 2, 0xff]), "user.note": Buffer.from("a=b\nc") } }), data: Buffer.from("xattr") },
    ].map((e) => ({ header: { ...e.header, size: e.data?.length ?? 0 }, data: e.data }));
    const parsed = await parse(tarOf(entries));
    const mtimeRecord = { mtime: "1700000000.5" };
    expect(parsed.map((p) => p.header)).toEqual(entries.map((e) => (e.header.mtime === 1700000000.5 ? { ...e.header, pax: mtimeRecord } : e.header)));
    expect(parsed.map((p) => p.data.toString())).toEqual(entries.map((e) => e.data?.toString() ?? ""));
  });

  it("should encode sizes of 8 GiB and more in a PAX record", async () => {
    const big = h({ name: "big", type: "reg", size: 9 * 2 ** 30 });
    const block = encodeHeader(big);
    expect(block.length).toBeGreaterThan(BLOCK);
    for await (const e of readTar(new StreamByteSource([block][Symbol.iterator]() as never))) {
      expect(e.header).toEqual(big);
      break;
    }
  });

  it("should read GNU long name/link records, base-256 numbers and global PAX headers", async () => {
    const gnuRecord = (flag: string, text: string): Buffer => {
      const data = Buffer.from(`${text}\0`);
      const hb = encodeHeader(h({ name: "././@LongLink", type: "reg", size: data.length }));
      hb.write(flag, 156, "latin1");
      // fix the checksum after changing the type flag
      hb.fill(0x20, 148, 156);
      let sum = 0;
      for (const b of hb) sum += b;
      hb.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "latin1");
      return Buffer.concat([hb, data, Buffer.alloc(padding(data.length))]);
    };
    const longName = `${"n".repeat(300)}/file`;
    const longLink = `${"l".repeat(300)}/target`;
    const main = encodeHeader(h({ name: "short", type: "symlink", linkName: "short" }));
    // base-256 uid as GNU tar writes it for huge ids
    main.fill(0, 108, 116);
    main[108] = 0x80;
    main.writeUInt32BE(0x12345678, 112);
    main.fill(0x20, 148, 156);
    let sum = 0;
    for (const b of main) sum += b;
    main.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "latin1");
    const globalData = Buffer.from("19 comment=global!\n");
    const global = encodeHeader(h({ name: "pax_global_header", type: "reg", size: globalData.length }));
    global.write("g", 156, "latin1");
    global.fill(0x20, 148, 156);
    sum = 0;
    for (const b of global) sum += b;
    global.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "latin1");
    const tar = Buffer.concat([global, globalData, Buffer.alloc(padding(globalData.length)), gnuRecord("L", longName), gnuRecord("K", longLink), main, END_OF_ARCHIVE]);
    const [e] = await parse(tar);
    expect(e!.header).toEqual(h({ name: longName, type: "symlink", linkName: longLink, uid: 0x12345678, pax: { comment: "global!" } }));
  });

  it("should fail with typed errors on a bad checksum, truncation and unsupported types", async () => {
    const good = tarOf([{ header: h({ name: "f", type: "reg", size: 10 }), data: Buffer.alloc(10, 1) }]);
    const badSum = Buffer.from(good);
    badSum[0] = 0x41;
    const sparse = Buffer.from(good);
    sparse.write("S", 156, "latin1");
    sparse[148] = 0x20; // checksum now off by the flag change; recompute
    sparse.fill(0x20, 148, 156);
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += sparse[i]!;
    sparse.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "latin1");
    const codes = await Promise.all(
      [badSum, good.subarray(0, 515), good.subarray(0, 300), sparse].map((t) => parse(t).then(() => "ok", (err: { code: string }) => err.code)),
    );
    expect(codes).toEqual(["TAR_BAD_HEADER", "TAR_TRUNCATED", "TAR_TRUNCATED", "TAR_UNSUPPORTED_ENTRY"]);
  });

  it("should skip entries of unknown types and their data (a GNU sparse map spilling into an extension block too) when asked", async () => {
    const dataOf = (n: number, fill: number) => [Buffer.alloc(n, fill), Buffer.alloc(padding(n))];
    const before = h({ name: "./before", type: "reg", size: 3 });
    const after = h({ name: `./${"z".repeat(120)}/after`, type: "reg", size: 4, xattrs: { "user.bin": Buffer.from([0, 0x80, 0xff]) } });
    const volume = retyped(encodeHeader(h({ name: "volume label", type: "reg" })), "V");
    // isextended at 482; the extension block's own isextended (504) is 0, so one block follows
    const sparse = retyped(encodeHeader(h({ name: "./sparse", type: "reg", size: 700 })), "S", (b) => (b[482] = 1));
    const extension = Buffer.alloc(BLOCK, 0);
    extension.write("00000001000\0", 0, "latin1");
    const dumpdir = retyped(encodeHeader(h({ name: "./dumpdir/", type: "reg", size: 9 })), "D");
    const tar = Buffer.concat([
      encodeHeader(before),
      ...dataOf(3, 0x61),
      volume,
      sparse,
      extension,
      ...dataOf(700, 0x53),
      dumpdir,
      ...dataOf(9, 0x44),
      encodeHeader(after),
      ...dataOf(4, 0x62),
      END_OF_ARCHIVE,
    ]);
    const told: UnsupportedTarEntry[] = [];
    const skipped = await parse(tar, { onUnsupported: (u) => told.push(u) });
    const want = [
      { header: before, data: Buffer.from("aaa") },
      { header: after, data: Buffer.from("bbbb") },
    ];
    expect(skipped).toEqual(want);
    expect(told).toEqual([
      { typeflag: "V", name: "volume label", size: 0, headerOffset: 1024 },
      { typeflag: "S", name: "./sparse", size: 700, headerOffset: 1536 },
      { typeflag: "D", name: "./dumpdir/", size: 9, headerOffset: 3584 },
    ]);
    expect(await parse(tar, { onUnsupported: "skip" })).toEqual(want);
    const refuse = (u: UnsupportedTarEntry) => {
      if (u.typeflag !== "V") throw new Error(`refused ${u.typeflag}`);
    };
    await expect(parse(tar, { onUnsupported: refuse })).rejects.toThrow("refused S");
    await expect(parse(tar)).rejects.toMatchObject({ code: "TAR_UNSUPPORTED_ENTRY", context: { typeflag: "V", offset: 1024 } });
    await expect(parse(tar.subarray(0, 3584 + 512 + 5), { onUnsupported: "skip" })).rejects.toMatchObject({ code: "TAR_TRUNCATED" });
  });
});
