import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { debianRootfsTar } from "@lazypull/testkit";
import { convertToEstargz, fileRangeReader, openStargz, readTar, StreamByteSource, type ConvertResultDetail } from "../src/index.js";

interface Seen {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  linkName: string;
  size: number;
  mtime: number;
  dev: string;
  xattrs: Record<string, string>;
  sha?: string;
}

async function entriesOf(stream: Readable): Promise<Seen[]> {
  const out: Seen[] = [];
  for await (const e of readTar(new StreamByteSource(stream[Symbol.asyncIterator]()))) {
    const h = e.header;
    const s: Seen = {
      name: h.name,
      type: h.type,
      mode: h.mode,
      uid: h.uid,
      gid: h.gid,
      uname: h.uname,
      gname: h.gname,
      linkName: h.linkName,
      size: h.size,
      mtime: h.mtime,
      dev: `${h.devMajor},${h.devMinor}`,
      xattrs: Object.fromEntries(Object.entries(h.xattrs).map(([k, v]) => [k, v.toString("base64")])),
    };
    if (h.type === "reg") {
      const hash = createHash("sha256");
      for (let left = h.size; left > 0; ) {
        const b = await e.read(Math.min(left, 1 << 20));
        hash.update(b);
        left -= b.length;
      }
      s.sha = `sha256:${hash.digest("hex")}`;
    }
    out.push(s);
  }
  return out;
}

describe("Debian bookworm rootfs round trip", () => {
  let dir: string;
  let src: string;
  let blob: string;
  let result: ConvertResultDetail;
  let source: Seen[];

  beforeAll(async () => {
    src = await debianRootfsTar();
    dir = await mkdtemp(join(tmpdir(), "lazypull-esgz-debian-"));
    blob = join(dir, "rootfs.esgz");
    // level 1 keeps the test quick; the layout does not depend on the level
    result = await convertToEstargz(createReadStream(src), createWriteStream(blob), { level: 1 });
    source = await entriesOf(createReadStream(src));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("should gunzip as one stream into the source's entries plus the landmark and the TOC", async () => {
    const out = await entriesOf(createReadStream(blob).pipe(createGunzip()));
    expect(source.length).toBeGreaterThan(8000);
    expect(out[0]!.name).toEqual(".no.prefetch.landmark");
    expect(out.at(-1)!.name).toEqual("stargz.index.json");
    expect(out.slice(1, -1)).toEqual(source);
  });

  it("should list identically with GNU tar (an independent parser)", () => {
    const list = (cmd: string) => execFileSync("sh", ["-c", cmd], { maxBuffer: 64 << 20 }).toString().split("\n");
    const ours = list(`gzip -dc '${blob}' | tar --xattrs --numeric-owner --full-time -tvf -`);
    const theirs = list(`tar --xattrs --numeric-owner --full-time -tvf '${src}'`);
    expect(ours.filter((l) => !/ (\.no\.prefetch\.landmark|stargz\.index\.json)$/.test(l))).toEqual(theirs);
  });

  it("should read every file back through the reader with the source's bytes and metadata", async () => {
    const rr = await fileRangeReader(blob);
    try {
      const r = await openStargz(rr, { expectedTocDigest: result.tocDigest, label: "debian" });
      expect(rr.reads).toEqual(1);
      const norm = (n: string) => n.replace(/^\.\//, "").replace(/\/$/, "");
      const byName = new Map(source.map((s) => [norm(s.name), s]));
      for (const s of source) {
        const node = r.lookup(s.name)!;
        expect({ path: node.path, mode: node.mode, uid: node.uid, gid: node.gid }).toEqual({ path: norm(s.name), mode: s.mode, uid: s.uid, gid: s.gid });
        if (s.type === "symlink") expect(node.linkName).toEqual(s.linkName);
        if (s.type === "hardlink") expect(node.nlink).toBeGreaterThan(1);
        const sha = s.type === "reg" ? s.sha : s.type === "hardlink" ? byName.get(norm(s.linkName))!.sha : undefined;
        if (sha) expect(`sha256:${createHash("sha256").update(await r.readFile(s.name)).digest("hex")}`).toEqual(sha);
      }
      expect([...r.walk()].length).toEqual(byName.size);
    } finally {
      await rr.close();
    }
  });
});
