import { execFile } from "node:child_process";
import { createReadStream } from "node:fs";
import { link, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { emptyHeader, encodeHeader, END_OF_ARCHIVE, padding, readTar, StreamByteSource } from "../src/index.js";

const run = promisify(execFile);
const list = async (tar: string) => (await run("tar", ["--xattrs", "--numeric-owner", "--full-time", "-tvvf", tar])).stdout;

describe("tar compatibility with GNU tar", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "lazypull-gnutar-"));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("should re-encode GNU- and POSIX-format archives (long names, links) into archives GNU tar lists identically", async () => {
    const long = "x".repeat(150);
    const src = join(dir, "src");
    await mkdir(join(src, long, long), { recursive: true });
    await writeFile(join(src, long, long, "file"), "hi\n");
    await symlink(`${long}/${long}/file`, join(src, "lnk"));
    await link(join(src, long, long, "file"), join(src, "hard"));
    // ustar cannot hold 300-character names; its tree needs the prefix field instead
    const split = join(dir, "split");
    await mkdir(join(split, "a".repeat(70), "b".repeat(70)), { recursive: true });
    await writeFile(join(split, "a".repeat(70), "b".repeat(70), "file"), "split\n");
    for (const format of ["gnu", "posix", "ustar"]) {
      const original = join(dir, `${format}.tar`);
      await run("tar", [`--format=${format}`, "-cf", original, "-C", format === "ustar" ? split : src, "."]);
      const parts: Buffer[] = [];
      for await (const e of readTar(new StreamByteSource(createReadStream(original)[Symbol.asyncIterator]()))) {
        const data = await e.read(e.header.size);
        parts.push(encodeHeader(e.header), data, Buffer.alloc(padding(data.length)));
      }
      const copy = join(dir, `re-${format}.tar`);
      await writeFile(copy, Buffer.concat([...parts, END_OF_ARCHIVE]));
      expect(await list(copy)).toEqual(await list(original));
    }
  });

  it("should write PAX records GNU tar extracts: long names, ids > 2097151, sub-second mtime, xattrs, long user names", async () => {
    const h = emptyHeader(`./${"d".repeat(120)}/${"f".repeat(120)}`, "reg");
    Object.assign(h, { size: 3, uid: 3_000_000, gid: 4_000_000, mtime: 1700000000.25, uname: "u".repeat(40), xattrs: { "user.foo": Buffer.from("bar") } });
    const tar = join(dir, "ours.tar");
    await writeFile(tar, Buffer.concat([encodeHeader(h), Buffer.from("abc"), Buffer.alloc(padding(3)), END_OF_ARCHIVE]));
    const [line, xattr] = (await list(tar)).split("\n");
    expect(line).toEqual(`-rw-r--r--* 3000000/4000000   3 2023-11-14 22:13:20.25 ./${"d".repeat(120)}/${"f".repeat(120)}`);
    expect(xattr!.trim()).toEqual("x: 3 user.foo");
    const out = join(dir, "x");
    await mkdir(out);
    await run("tar", ["--xattrs", "--xattrs-include=user.*", "--numeric-owner", "-xf", tar, "-C", out]);
    const p = join(out, "d".repeat(120), "f".repeat(120));
    const st = await stat(p, { bigint: true });
    expect([st.uid, st.gid, st.mtimeNs, (await readFile(p)).toString()]).toEqual([3_000_000n, 4_000_000n, 1700000000_250000000n, "abc"]);
  });
});
