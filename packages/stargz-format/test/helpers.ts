import { Readable, Writable } from "node:stream";
import { gzipSync } from "node:zlib";
import { createHash } from "node:crypto";
import { convertToEstargz } from "../src/writer.js";
import { emptyHeader, encodeHeader, END_OF_ARCHIVE, padding, type TarHeader } from "../src/tar/header.js";
import { estargzFooter, legacyStargzFooter } from "../src/footer.js";
import type { ConvertOptions, RangeReader, TocEntry } from "../src/types.js";

export interface FixtureEntry {
  header: Partial<TarHeader> & Pick<TarHeader, "name" | "type">;
  data?: Buffer;
}

export function header(e: FixtureEntry): TarHeader {
  return { ...emptyHeader(e.header.name, e.header.type), ...e.header, size: e.data?.length ?? e.header.size ?? 0 };
}

/** A tar made with our own writer (the tar tests check it against GNU tar separately). */
export function makeTar(entries: FixtureEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    parts.push(encodeHeader(header(e)));
    if (e.data) parts.push(e.data, Buffer.alloc(padding(e.data.length)));
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

export async function convertBuffer(input: Buffer, opts: ConvertOptions = {}) {
  const chunks: Buffer[] = [];
  const out = new Writable({
    write(c: Buffer, _e, cb) {
      chunks.push(c);
      cb();
    },
  });
  const result = await convertToEstargz(Readable.from([input]), out, opts);
  return { blob: Buffer.concat(chunks), result };
}

export function memRange(buf: Buffer): RangeReader & { reads: Array<[number, number]> } {
  const reads: Array<[number, number]> = [];
  return {
    size: buf.length,
    reads,
    async read(offset: number, length: number) {
      reads.push([offset, length]);
      return Buffer.from(buf.subarray(offset, offset + length));
    },
  };
}

export const sha = (b: Buffer | string): string => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** Go's gzip header for level 9: XFL=2, OS=255 (unknown). The CRC does not cover the header. */
function goGzip(raw: Buffer): Buffer {
  const g = gzipSync(raw, { level: 9 });
  g[8] = 0x02;
  g[9] = 0xff;
  return g;
}

export interface HandFile {
  /** raw tar name, e.g. `./etc/` or `./usr/bin/x` */
  name: string;
  type: "dir" | "reg" | "symlink" | "hardlink";
  data?: Buffer;
  linkName?: string;
  mode?: number;
  uid?: number;
  gid?: number;
}

/**
 * A blob laid out by the rules of containerd's converter (v0.12), written independently of our writer:
 * raw tar names in the TOC (`./x`, dirs with `/`), mode/uid/gid omitted when zero, the last chunk
 * without chunkSize, a single exact-size chunk with chunkSize = size, digest on empty files,
 * `.no.prefetch.landmark` first, Go gzip headers, no innerOffset. `legacy` gives a CRFS stargz blob:
 * 47-byte footer, no chunkDigest, no landmark.
 */
export function handBlob(files: HandFile[], opts: { chunkSize: number; legacy?: boolean; tocOverride?: (toc: { version: number; entries: TocEntry[] }) => void }) {
  const members: Buffer[] = [];
  let offset = 0;
  let raw: Buffer[] = [];
  const entries: TocEntry[] = [];
  const close = (): void => {
    if (raw.length === 0) return;
    const m = goGzip(Buffer.concat(raw));
    members.push(m);
    offset += m.length;
    raw = [];
  };
  const all: HandFile[] = opts.legacy ? files : [{ name: ".no.prefetch.landmark", type: "reg", data: Buffer.from([0x0f]), mode: 0o644 }, ...files];
  for (const f of all) {
    const h = emptyHeader(f.name, f.type);
    h.mode = f.mode ?? 0;
    h.uid = f.uid ?? 0;
    h.gid = f.gid ?? 0;
    h.linkName = f.linkName ?? "";
    h.size = f.data?.length ?? 0;
    raw.push(encodeHeader(h));
    const ent: TocEntry = { name: f.name, type: f.type, modtime: "1970-01-01T00:00:00Z" };
    if (f.linkName) ent.linkName = f.linkName;
    if (h.mode) ent.mode = h.mode;
    if (h.uid) ent.uid = h.uid;
    if (h.gid) ent.gid = h.gid;
    entries.push(ent);
    if (f.type !== "reg") continue;
    const data = f.data ?? Buffer.alloc(0);
    if (data.length) ent.size = data.length;
    for (let w = 0; w < data.length; ) {
      const n = Math.min(opts.chunkSize, data.length - w);
      close();
      const c: TocEntry = w === 0 ? ent : { name: f.name, type: "chunk", chunkOffset: w };
      if (w > 0) entries.push(c);
      c.offset = offset;
      if (n === opts.chunkSize) c.chunkSize = n; // containerd: omitted when the remainder is smaller
      if (!opts.legacy) c.chunkDigest = sha(data.subarray(w, w + n));
      raw.push(data.subarray(w, w + n));
      w += n;
    }
    if (!opts.legacy) ent.digest = sha(data);
    raw.push(Buffer.alloc(padding(data.length)));
  }
  close();
  const toc = { version: 1, entries };
  opts.tocOverride?.(toc);
  const json = Buffer.from(JSON.stringify(toc, null, "\t"));
  const th = emptyHeader("stargz.index.json", "reg");
  th.size = json.length;
  th.mode = 0;
  const tocOffset = offset;
  members.push(goGzip(Buffer.concat([encodeHeader(th), json, Buffer.alloc(padding(json.length)), END_OF_ARCHIVE])));
  members.push(opts.legacy ? legacyStargzFooter(tocOffset) : estargzFooter(tocOffset));
  return { blob: Buffer.concat(members), tocDigest: sha(json), tocOffset, toc };
}
