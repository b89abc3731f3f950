import { StargzError } from "../errors.js";

export const BLOCK = 512;

export type TarEntryType = "reg" | "hardlink" | "symlink" | "char" | "block" | "dir" | "fifo";

/** One tar entry's metadata, after PAX and GNU long-name records have been applied. */
export interface TarHeader {
  /** the raw name as stored (e.g. `./usr/bin/` for mmdebstrap tars) */
  name: string;
  type: TarEntryType;
  /** permission and special bits (& 0o7777) */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** seconds since the epoch, possibly fractional (PAX) */
  mtime: number;
  linkName: string;
  uname: string;
  gname: string;
  devMajor: number;
  devMinor: number;
  /** from `SCHILY.xattr.*` PAX records, raw bytes */
  xattrs: Record<string, Buffer>;
  /**
   * Other PAX records, carried verbatim (atime, ctime, …). A `mtime` record here wins over `mtime`
   * when writing, so sub-second times survive byte-exactly; drop it if you change `mtime`.
   */
  pax: Record<string, string>;
}

const TYPE_FLAGS: Record<TarEntryType, string> = {
  reg: "0",
  hardlink: "1",
  symlink: "2",
  char: "3",
  block: "4",
  dir: "5",
  fifo: "6",
};

export function typeFromFlag(flag: string): TarEntryType | undefined {
  switch (flag) {
    case "0":
    case "\0":
    case "7":
      return "reg";
    case "1":
      return "hardlink";
    case "2":
      return "symlink";
    case "3":
      return "char";
    case "4":
      return "block";
    case "5":
      return "dir";
    case "6":
      return "fifo";
    default:
      return undefined;
  }
}

/**
 * A PAX sparse file (GNU.sparse.* records): it looks regular, but its data is a sparse map and
 * fragments, not the file's contents.
 */
export function isPaxSparse(h: Pick<TarHeader, "pax">): boolean {
  return Object.keys(h.pax).some((k) => k.startsWith("GNU.sparse."));
}

export function emptyHeader(name: string, type: TarEntryType): TarHeader {
  return {
    name,
    type,
    mode: type === "dir" ? 0o755 : 0o644,
    uid: 0,
    gid: 0,
    size: 0,
    mtime: 0,
    linkName: "",
    uname: "",
    gname: "",
    devMajor: 0,
    devMinor: 0,
    xattrs: {},
    pax: {},
  };
}

// ---- field decoding -------------------------------------------------------------------------------

export function readString(block: Buffer, off: number, len: number): string {
  const end = block.indexOf(0, off);
  return block.toString("utf8", off, end === -1 || end > off + len ? off + len : end);
}

/** Octal (NUL/space padded) or GNU base-256 (high bit of the first byte set). */
export function readNumber(block: Buffer, off: number, len: number, field: string): number {
  const first = block[off]!;
  if (first & 0x80) {
    // base-256, two's complement; negative values only make sense for mtime
    let v = BigInt(first & 0x7f) - (first & 0x40 ? 0x80n : 0n);
    for (let i = 1; i < len; i++) v = (v << 8n) | BigInt(block[off + i]!);
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new StargzError("TAR_BAD_HEADER", `tar header field ${field} is out of range`, { field });
    }
    return Number(v);
  }
  const s = block.toString("latin1", off, off + len).replace(/[\0 ]+$/g, "").replace(/^[ \0]+/, "");
  if (s === "") return 0;
  if (!/^[0-7]+$/.test(s)) {
    throw new StargzError("TAR_BAD_HEADER", `tar header field ${field} is not octal: ${JSON.stringify(s)}`, { field });
  }
  return parseInt(s, 8);
}

export function checksumOk(block: Buffer): boolean {
  const stored = readNumber(block, 148, 8, "chksum");
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return stored === unsigned || stored === signed;
}

export function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (block[i] !== 0) return false;
  return true;
}

/** PAX records `LEN key=value\n`; values stay raw bytes (xattrs may be binary). */
export function parsePax(data: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break; // some writers pad with NULs
    const sp = data.indexOf(0x20, pos);
    if (sp === -1) throw new StargzError("TAR_BAD_PAX", "PAX record without a length", { offset: pos });
    const len = Number(data.toString("latin1", pos, sp));
    if (!Number.isInteger(len) || len <= sp - pos + 1 || pos + len > data.length || data[pos + len - 1] !== 0x0a) {
      throw new StargzError("TAR_BAD_PAX", "PAX record length is wrong", { offset: pos });
    }
    const rec = data.subarray(sp + 1, pos + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq <= 0) throw new StargzError("TAR_BAD_PAX", "PAX record without key=value", { offset: pos });
    out.set(rec.toString("utf8", 0, eq), Buffer.from(rec.subarray(eq + 1)));
    pos += len;
  }
  return out;
}

// ---- encoding ---------------------------------------------------------------------------------------

const MAX_OCTAL_8 = 0o7777777; // 7 digits + NUL
const MAX_OCTAL_12 = 0o77777777777; // 11 digits + NUL

function writeString(block: Buffer, off: number, len: number, s: string): void {
  block.write(s, off, len, "utf8");
}

function writeOctal(block: Buffer, off: number, len: number, v: number): void {
  block.write(v.toString(8).padStart(len - 1, "0"), off, len - 1, "latin1");
  block[off + len - 1] = 0;
}

function writeBase256(block: Buffer, off: number, len: number, v: number): void {
  let x = BigInt(v);
  for (let i = len - 1; i > 0; i--) {
    block[off + i] = Number(x & 0xffn);
    x >>= 8n;
  }
  block[off] = 0x80;
}

function writeNumber(block: Buffer, off: number, len: number, v: number): void {
  if (v >= 0 && v <= (len === 8 ? MAX_OCTAL_8 : MAX_OCTAL_12)) writeOctal(block, off, len, v);
  else writeBase256(block, off, len, v);
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, "utf8"), value, Buffer.from("\n")]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len), "latin1"), body]);
}

/** Split a long name into ustar prefix (≤155) + name (≤100) at a slash, if possible. */
function splitUstarName(name: string): [string, string] | undefined {
  const bytes = Buffer.byteLength(name);
  if (bytes <= 100) return ["", name];
  if (bytes > 256 || bytes !== name.length) return undefined;
  for (let i = name.length - 1; i > 0; i--) {
    if (name[i] !== "/") continue;
    if (i <= 155 && name.length - i - 1 <= 100 && name.length - i - 1 > 0) return [name.slice(0, i), name.slice(i + 1)];
  }
  return undefined;
}

function formatPaxTime(sec: number): string {
  if (Number.isInteger(sec)) return String(sec);
  return sec.toFixed(9).replace(/0+$/, "");
}

/** One 512-byte ustar block: the header's fields as ustar stores them, with the name split at `prefix`. */
function ustarBlock(h: Omit<TarHeader, "type" | "xattrs" | "pax"> & { prefix: string; flag: string }): Buffer {
  const b = Buffer.alloc(BLOCK);
  writeString(b, 0, 100, h.name);
  writeOctal(b, 100, 8, h.mode);
  writeNumber(b, 108, 8, h.uid);
  writeNumber(b, 116, 8, h.gid);
  writeNumber(b, 124, 12, h.size);
  writeNumber(b, 136, 12, h.mtime);
  b.fill(0x20, 148, 156);
  b.write(h.flag, 156, 1, "latin1");
  writeString(b, 157, 100, h.linkName);
  b.write("ustar\x0000", 257, 8, "latin1");
  writeString(b, 265, 32, h.uname);
  writeString(b, 297, 32, h.gname);
  writeNumber(b, 329, 8, h.devMajor);
  writeNumber(b, 337, 8, h.devMinor);
  writeString(b, 345, 155, h.prefix);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i]!;
  b.write(sum.toString(8).padStart(6, "0") + "\0 ", 148, 8, "latin1");
  return b;
}

export function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/**
 * Encode a header as ustar, preceded by a PAX extended header when anything does not fit
 * (long names/links, sizes ≥ 8 GiB, big ids, sub-second or negative mtimes, long user names, xattrs).
 * Output is deterministic: PAX records are sorted by key.
 */
export function encodeHeader(h: TarHeader): Buffer {
  const records = new Map<string, Buffer>();
  for (const [k, v] of Object.entries(h.pax)) records.set(k, Buffer.from(v, "utf8"));
  const split = splitUstarName(h.name);
  let prefix = "";
  let name = h.name;
  if (split) [prefix, name] = split;
  else {
    records.set("path", Buffer.from(h.name, "utf8"));
    name = Buffer.from(h.name, "utf8").subarray(0, 100).toString("latin1").replace(/[^\x20-\x7e]/g, "_");
  }
  let linkName = h.linkName;
  if (Buffer.byteLength(linkName) > 100) {
    records.set("linkpath", Buffer.from(linkName, "utf8"));
    linkName = "";
  }
  let size = h.size;
  if (size > MAX_OCTAL_12) {
    records.set("size", Buffer.from(String(size)));
    size = 0;
  }
  let uid = h.uid;
  if (uid > MAX_OCTAL_8) {
    records.set("uid", Buffer.from(String(uid)));
    uid = 0;
  }
  let gid = h.gid;
  if (gid > MAX_OCTAL_8) {
    records.set("gid", Buffer.from(String(gid)));
    gid = 0;
  }
  let mtime = h.mtime;
  if (!Number.isInteger(mtime) || mtime < 0 || mtime > MAX_OCTAL_12) {
    if (!records.has("mtime")) records.set("mtime", Buffer.from(formatPaxTime(mtime)));
    mtime = Math.max(0, Math.min(MAX_OCTAL_12, Math.floor(mtime)));
  } else if (records.has("mtime")) {
    mtime = Math.max(0, Math.min(MAX_OCTAL_12, Math.floor(Number(records.get("mtime")!.toString()))));
  }
  let uname = h.uname;
  if (Buffer.byteLength(uname) > 32) {
    records.set("uname", Buffer.from(uname, "utf8"));
    uname = "";
  }
  let gname = h.gname;
  if (Buffer.byteLength(gname) > 32) {
    records.set("gname", Buffer.from(gname, "utf8"));
    gname = "";
  }
  for (const [k, v] of Object.entries(h.xattrs)) records.set(`SCHILY.xattr.${k}`, v);

  const main = ustarBlock({
    name,
    prefix,
    flag: TYPE_FLAGS[h.type],
    mode: h.mode & 0o7777,
    uid,
    gid,
    size,
    mtime,
    linkName,
    uname,
    gname,
    devMajor: h.devMajor,
    devMinor: h.devMinor,
  });
  if (records.size === 0) return main;

  const keys = [...records.keys()].sort();
  const paxData = Buffer.concat(keys.map((k) => paxRecord(k, records.get(k)!)));
  const base = h.name.replace(/\/+$/, "").split("/").pop() ?? "";
  // only informative (readers use the records); keep it short, ASCII and ustar-safe
  const paxName = `PaxHeaders.0/${base}`.replace(/[^\x20-\x7e]/g, "_").slice(0, 100);
  const paxHdr = ustarBlock({
    name: paxName,
    prefix: "",
    flag: "x",
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: paxData.length,
    mtime: 0,
    linkName: "",
    uname: "",
    gname: "",
    devMajor: 0,
    devMinor: 0,
  });
  return Buffer.concat([paxHdr, paxData, Buffer.alloc(padding(paxData.length)), main]);
}

/** The two zero blocks that end an archive. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);
