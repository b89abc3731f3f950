import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { emptyHeader, encodeHeader, END_OF_ARCHIVE, padding, type TarHeader } from "@lazypull/stargz-format";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { BufferSource, MapCache, fakeRef } from "../../test/helpers/fakes.js";
import { FetchCounters } from "./counters.js";
import { SEGMENT_BYTES, WholeLayer } from "./whole-layer.js";

const log = pino({ level: "silent" });
const digest = `sha256:${"b".repeat(64)}`;

/** Serves one gzip blob whole, counting fetches (the range calls are not used by whole layers). */
class WholeBlobSource extends BufferSource {
  fetches = 0;
  override async fetchBlob(): Promise<NodeJS.ReadableStream> {
    this.fetches += 1;
    const blob = this.blob;
    // odd-sized pieces, as a network delivers them
    return Readable.from((function* () {
      for (let i = 0; i < blob.length; i += 7777) yield blob.subarray(i, i + 7777);
    })());
  }
}

function h(over: Partial<TarHeader> & Pick<TarHeader, "name" | "type">): TarHeader {
  return { ...emptyHeader(over.name, over.type), mtime: 1700000000, ...over };
}

/** A header block with another type flag (checksum fixed): tar types encodeHeader never writes. */
function retyped(block: Buffer, flag: string): Buffer {
  const b = Buffer.from(block);
  b.write(flag, b.length - 512 + 156, "latin1");
  const start = b.length - 512;
  b.fill(0x20, start + 148, start + 156);
  let sum = 0;
  for (let i = start; i < b.length; i++) sum += b[i]!;
  b.write(`${sum.toString(8).padStart(6, "0")}\0 `, start + 148, "latin1");
  return b;
}

const entry = (header: Buffer, data = Buffer.alloc(0)) => [header, data, Buffer.alloc(padding(data.length))];

function load(source: WholeBlobSource, cache: MapCache, attempts = 1) {
  return WholeLayer.load({
    ref: fakeRef,
    digest,
    blobSize: source.blob.length,
    source,
    cache,
    counters: new FetchCounters(),
    log,
    retry: { attempts, delayMs: 1 },
    abort: new AbortController(),
  });
}

describe("WholeLayer", () => {
  it("should index a plain tar byte-exactly: binary xattrs, contiguous files, old-style dirs, links, whiteouts; a volume label skipped", async () => {
    const cap = Buffer.from("0100000200200080000000000000000000000000", "hex");
    const blob = Buffer.from([0, 0xff, 0x80, 0xc3, 0x28, 0x0a, 0x3d, 0]);
    const big = randomBytes(SEGMENT_BYTES + 10);
    const tar = Buffer.concat([
      ...entry(retyped(encodeHeader(h({ name: "backup label", type: "reg" })), "V")),
      ...entry(encodeHeader(h({ name: "./", type: "dir", mode: 0o755 }))),
      ...entry(encodeHeader(h({ name: "./usr/bin/ping", type: "reg", mode: 0o755, size: 5, xattrs: { "security.capability": cap, "user.blob": blob } })), Buffer.from("ping\n")),
      ...entry(encodeHeader(h({ name: "./lib/old/", type: "reg", mode: 0o750 }))),
      ...entry(retyped(encodeHeader(h({ name: "./contig", type: "reg", size: 2 })), "7"), Buffer.from("c7")),
      ...entry(encodeHeader(h({ name: "./big", type: "reg", size: big.length })), big),
      ...entry(encodeHeader(h({ name: "./big-hard", type: "hardlink", linkName: "./big" }))),
      ...entry(encodeHeader(h({ name: "./sym", type: "symlink", linkName: "usr/bin/ping" }))),
      ...entry(encodeHeader(h({ name: "./.wh.gone", type: "reg", mode: 0 }))),
      ...entry(encodeHeader(h({ name: "./opaque/.wh..wh..opq", type: "reg", mode: 0 }))),
      END_OF_ARCHIVE,
      Buffer.alloc(10240), // record padding after the end blocks must be read too
    ]);
    const source = new WholeBlobSource(gzipSync(tar));
    const cache = new MapCache();
    const layer = await load(source, cache);
    const paths = (l: WholeLayer, dir = ""): string[] => [dir, ...(l.readdir(dir) ?? []).flatMap((c) => paths(l, dir ? `${dir}/${c}` : c))];
    const shape = (l: WholeLayer) =>
      paths(l).map((path) => {
        const n = l.lookup(path)!;
        return { path, type: n.type, mode: n.mode, size: n.size, nlink: n.nlink, xattrs: Object.fromEntries(Object.entries(n.xattrs).map(([k, v]) => [k, v.toString("hex")])) };
      });
    const want = [
      { path: "", type: "dir", mode: 0o755, size: 0, nlink: 2, xattrs: {} },
      { path: ".wh.gone", type: "reg", mode: 0, size: 0, nlink: 1, xattrs: {} },
      { path: "big", type: "reg", mode: 0o644, size: big.length, nlink: 2, xattrs: {} },
      { path: "big-hard", type: "reg", mode: 0o644, size: big.length, nlink: 2, xattrs: {} },
      { path: "contig", type: "reg", mode: 0o644, size: 2, nlink: 1, xattrs: {} },
      { path: "lib", type: "dir", mode: 0o755, size: 0, nlink: 2, xattrs: {} },
      { path: "lib/old", type: "dir", mode: 0o750, size: 0, nlink: 2, xattrs: {} },
      { path: "opaque", type: "dir", mode: 0o755, size: 0, nlink: 2, xattrs: {} },
      { path: "opaque/.wh..wh..opq", type: "reg", mode: 0, size: 0, nlink: 1, xattrs: {} },
      { path: "sym", type: "symlink", mode: 0o644, size: 0, nlink: 1, xattrs: {} },
      { path: "usr", type: "dir", mode: 0o755, size: 0, nlink: 2, xattrs: {} },
      { path: "usr/bin", type: "dir", mode: 0o755, size: 0, nlink: 2, xattrs: {} },
      { path: "usr/bin/ping", type: "reg", mode: 0o755, size: 5, nlink: 1, xattrs: { "security.capability": cap.toString("hex"), "user.blob": blob.toString("hex") } },
    ];
    const got = shape(layer);
    expect(got).toEqual(want);
    expect(layer.lookup("big-hard")!.nlink).toBe(2);
    expect(layer.lookup("sym")).toMatchObject({ type: "symlink", linkName: "usr/bin/ping" });
    expect(layer.lookup("usr/bin/ping")!.mtimeMs).toBe(1700000000 * 1000);
    expect((await layer.read("contig", 0, 10)).toString()).toBe("c7");
    expect((await layer.read("big-hard", SEGMENT_BYTES - 5, 12)).equals(big.subarray(SEGMENT_BYTES - 5, SEGMENT_BYTES + 7))).toBe(true);
    expect(source.fetches).toBe(1);
    layer.close();

    // the cached index replays the same bytes without the registry
    const again = await load(source, cache);
    expect(source.fetches).toBe(1);
    expect(shape(again)).toEqual(got);
    expect((await again.read("big", 0, big.length)).equals(big)).toBe(true);
    again.close();

    // an index written by the tar-stream version (mangled xattrs) is not replayed
    const old = new MapCache();
    for (const [k, v] of cache.map) if (!k.endsWith("|whole:index:v2")) old.map.set(k, v);
    old.map.set(`${digest}|whole:index:v1`, Buffer.from(JSON.stringify([{ op: "add", path: "junk", node: { type: "reg", mode: 0, uid: 0, gid: 0, size: 0, mtimeMs: 0, xattrs: {} } }])));
    const rebuilt = await load(source, old);
    expect(source.fetches).toBe(2);
    expect(shape(rebuilt)).toEqual(got);
    rebuilt.close();
  });

  it("should refuse a layer with a GNU sparse file, old-style or PAX, naming the entry", async () => {
    const sparseOld = Buffer.concat([
      ...entry(encodeHeader(h({ name: "./ok", type: "reg", size: 1 })), Buffer.from("x")),
      ...entry(retyped(encodeHeader(h({ name: "./holes", type: "reg", size: 3 })), "S"), Buffer.from("abc")),
      END_OF_ARCHIVE,
    ]);
    const sparsePax = Buffer.concat([
      ...entry(encodeHeader(h({ name: "./GNUSparseFile.0/holes", type: "reg", size: 3, pax: { "GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": "holes", "GNU.sparse.realsize": "9000" } })), Buffer.from("abc")),
      END_OF_ARCHIVE,
    ]);
    const dumpdir = Buffer.concat([...entry(retyped(encodeHeader(h({ name: "./d/", type: "reg", size: 4 })), "D"), Buffer.from("Ya\0\0")), END_OF_ARCHIVE]);
    const causes = [];
    for (const tar of [sparseOld, sparsePax, dumpdir]) {
      const cache = new MapCache();
      const err = (await load(new WholeBlobSource(gzipSync(tar)), cache).catch((e: unknown) => e)) as { code: string; cause: { code: string; message: string; context: Record<string, unknown> } };
      expect(err.code).toBe("FUSEFS_FETCH_FAILED");
      causes.push({ code: err.cause.code, message: err.cause.message, path: err.cause.context.path });
      // nothing half-indexed is left to replay
      expect([...cache.map.keys()].filter((k) => k.includes("whole:index"))).toEqual([]);
      expect(cache.pins.get(digest)).toBe(0);
    }
    expect(causes).toEqual([
      { code: "FUSEFS_BAD_LAYER", message: `layer ${digest} holds ./holes, a GNU sparse file (tar type 'S'), which lazypull cannot serve`, path: "./holes" },
      { code: "FUSEFS_BAD_LAYER", message: `layer ${digest} holds ./GNUSparseFile.0/holes, a PAX sparse file, which lazypull cannot serve`, path: "./GNUSparseFile.0/holes" },
      { code: "FUSEFS_BAD_LAYER", message: `layer ${digest} holds ./d/, a GNU incremental dumpdir (tar type 'D'), which lazypull cannot serve`, path: "./d/" },
    ]);
  });
});
