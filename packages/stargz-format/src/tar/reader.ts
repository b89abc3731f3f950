import { StargzError } from "../errors.js";
import type { ByteSource } from "../byte-source.js";
import {
  BLOCK,
  checksumOk,
  isZeroBlock,
  padding,
  parsePax,
  readNumber,
  readString,
  typeFromFlag,
  type TarHeader,
} from "./header.js";

export interface TarEntry {
  header: TarHeader;
  /** offset of the entry's first header block (including PAX/GNU records) in the tar */
  headerOffset: number;
  /** offset of the entry's data in the tar */
  dataOffset: number;
  /** read up to `n` bytes of the entry's data (fewer only at its end) */
  read(n: number): Promise<Buffer>;
}

/** An entry whose type flag this reader does not know (GNU sparse 'S', volume label 'V', dumpdir 'D', …). */
export interface UnsupportedTarEntry {
  typeflag: string;
  /** its name, after PAX and GNU long-name records */
  name: string;
  /** bytes of data it holds in the tar (skipped) */
  size: number;
  headerOffset: number;
}

export interface ReadTarOptions {
  /**
   * What to do with an entry of an unknown type flag: "throw" (default) raises `TAR_UNSUPPORTED_ENTRY`;
   * "skip" steps over it and its data; a function is told of it and it is skipped unless the function throws.
   */
  onUnsupported?: "throw" | "skip" | ((entry: UnsupportedTarEntry) => void);
}

const DERIVED_PAX = new Set(["path", "linkpath", "size", "uid", "gid", "uname", "gname"]);

async function readExactly(src: ByteSource, n: number, what: string): Promise<Buffer> {
  const b = await src.read(n);
  if (b.length !== n) {
    throw new StargzError("TAR_TRUNCATED", `tar ends inside ${what}`, { offset: src.position });
  }
  return b;
}

/**
 * Entries of a tar (ustar, PAX, GNU; GNU long names/links; global PAX headers applied to what follows).
 * Data not read by the consumer is skipped before the next entry. Ends at the zero blocks or at EOF.
 */
export async function* readTar(src: ByteSource, opts: ReadTarOptions = {}): AsyncGenerator<TarEntry> {
  const onUnsupported = opts.onUnsupported ?? "throw";
  let global = new Map<string, Buffer>();
  for (;;) {
    const headerOffset = src.position;
    let pax = new Map<string, Buffer>();
    let longName: string | undefined;
    let longLink: string | undefined;
    let block: Buffer;
    for (;;) {
      block = await src.read(BLOCK);
      if (block.length === 0) return; // EOF without end blocks: accepted (many writers omit them)
      if (block.length !== BLOCK) throw new StargzError("TAR_TRUNCATED", "tar ends inside a header", { offset: src.position });
      if (isZeroBlock(block)) return;
      if (!checksumOk(block)) {
        throw new StargzError("TAR_BAD_HEADER", `tar header checksum mismatch at offset ${src.position - BLOCK}`, {
          offset: src.position - BLOCK,
        });
      }
      const flag = String.fromCharCode(block[156]!);
      if (flag === "x" || flag === "g" || flag === "L" || flag === "K") {
        const size = readNumber(block, 124, 12, "size");
        if (size > 64 << 20) throw new StargzError("TAR_BAD_HEADER", `tar metadata record of ${size} bytes`, { offset: headerOffset });
        const data = await readExactly(src, size, "a metadata record");
        await src.skip(padding(size));
        if (flag === "x") for (const [k, v] of parsePax(data)) pax.set(k, v);
        else if (flag === "g") global = new Map([...global, ...parsePax(data)]);
        else if (flag === "L") longName = readString(data, 0, data.length);
        else longLink = readString(data, 0, data.length);
        continue;
      }
      break;
    }
    const flag = String.fromCharCode(block[156]!);
    const type = typeFromFlag(flag);
    if (!type && onUnsupported === "throw") {
      throw new StargzError("TAR_UNSUPPORTED_ENTRY", `unsupported tar entry type '${flag}' for ${readString(block, 0, 100)}`, {
        offset: headerOffset,
        typeflag: flag,
      });
    }
    pax = new Map([...global, ...pax]);
    const magic = block.toString("latin1", 257, 263);
    const ustarPrefix = magic === "ustar\0" ? readString(block, 345, 155) : "";
    let name = readString(block, 0, 100);
    if (ustarPrefix) name = `${ustarPrefix}/${name}`;
    if (longName !== undefined) name = longName;
    let linkName = longLink ?? readString(block, 157, 100);
    const str = (k: string): string | undefined => pax.get(k)?.toString("utf8");
    const num = (k: string, fallback: number): number => {
      const s = str(k);
      if (s === undefined) return fallback;
      const v = Number(s);
      if (!Number.isFinite(v) || (k !== "mtime" && (!Number.isSafeInteger(v) || v < 0))) {
        throw new StargzError("TAR_BAD_PAX", `PAX ${k}=${s} is not a valid number`, { offset: headerOffset, key: k });
      }
      return v;
    };
    name = str("path") ?? name;
    if (!type) {
      const size = num("size", readNumber(block, 124, 12, "size"));
      if (typeof onUnsupported === "function") onUnsupported({ typeflag: flag, name, size, headerOffset });
      // An old GNU sparse header whose map overflowed is followed by extension blocks before its data.
      if (flag === "S" && block[482] !== 0) {
        for (;;) {
          const ext = await readExactly(src, BLOCK, "a GNU sparse map");
          if (ext[504] === 0) break;
        }
      }
      const before = src.position;
      await src.skip(size + padding(size));
      if (src.position - before !== size + padding(size)) {
        throw new StargzError("TAR_TRUNCATED", `tar ends inside the data of ${name}`, { offset: headerOffset });
      }
      continue;
    }
    linkName = str("linkpath") ?? linkName;
    const xattrs: Record<string, Buffer> = {};
    const rest: Record<string, string> = {};
    for (const [k, v] of pax) {
      if (k.startsWith("SCHILY.xattr.")) xattrs[k.slice("SCHILY.xattr.".length)] = v;
      else if (!DERIVED_PAX.has(k)) rest[k] = v.toString("utf8");
    }
    const header: TarHeader = {
      name,
      type,
      mode: readNumber(block, 100, 8, "mode") & 0o7777,
      uid: num("uid", readNumber(block, 108, 8, "uid")),
      gid: num("gid", readNumber(block, 116, 8, "gid")),
      size: num("size", readNumber(block, 124, 12, "size")),
      mtime: num("mtime", readNumber(block, 136, 12, "mtime")),
      linkName,
      uname: str("uname") ?? readString(block, 265, 32),
      gname: str("gname") ?? readString(block, 297, 32),
      devMajor: type === "char" || type === "block" ? readNumber(block, 329, 8, "devmajor") : 0,
      devMinor: type === "char" || type === "block" ? readNumber(block, 337, 8, "devminor") : 0,
      xattrs,
      pax: rest,
    };
    // Hardlinks, symlinks, devices, dirs and fifos carry no data whatever `size` says.
    const dataSize = type === "reg" ? header.size : 0;
    if (type !== "reg") header.size = 0;
    const dataOffset = src.position;
    let remaining = dataSize;
    yield {
      header,
      headerOffset,
      dataOffset,
      read: async (n: number) => {
        const want = Math.min(n, remaining);
        if (want === 0) return Buffer.alloc(0);
        const b = await readExactly(src, want, `the data of ${name}`);
        remaining -= want;
        return b;
      },
    };
    if (remaining > 0) {
      const before = src.position;
      await src.skip(remaining);
      if (src.position - before !== remaining) throw new StargzError("TAR_TRUNCATED", `tar ends inside the data of ${name}`, {});
    }
    await src.skip(padding(dataSize));
  }
}
