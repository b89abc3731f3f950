/**
 * Just enough of ELF to know what the dynamic loader will open before a program's first instruction:
 * its interpreter (PT_INTERP) and the libraries it names (DT_NEEDED), with the search paths the file
 * itself carries (DT_RPATH, DT_RUNPATH). Any file that is not a well-formed ELF answers `undefined`;
 * a prediction is a hint, never an error.
 */

/** reads bytes [offset, offset+length) of the file (shorter at its end) */
export type ReadAt = (offset: number, length: number) => Promise<Buffer>;

export interface ElfDeps {
  interpreter?: string;
  needed: string[];
  /** DT_RPATH entries (used only when there is no DT_RUNPATH), `$ORIGIN` not yet expanded */
  rpath: string[];
  runpath: string[];
}

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const DT_NULL = 0;
const DT_NEEDED = 1;
const DT_STRTAB = 5;
const DT_STRSZ = 10;
const DT_RPATH = 15;
const DT_RUNPATH = 29;

/** Ceilings, whatever the file declares: real programs stay far below them. */
const MAX_PROGRAM_HEADERS = 256;
const MAX_DYNAMIC_BYTES = 64 * 1024;
const MAX_STRTAB_BYTES = 1024 * 1024;
const MAX_INTERP_BYTES = 4096;
/** libraries taken from one file, and search directories (RPATH + RUNPATH): real programs name a few dozen at most */
export const MAX_NEEDED = 128;
export const MAX_SEARCH_DIRS = 32;

interface Word {
  is64: boolean;
  le: boolean;
}

function u16(b: Buffer, at: number, w: Word): number {
  return w.le ? b.readUInt16LE(at) : b.readUInt16BE(at);
}
function u32(b: Buffer, at: number, w: Word): number {
  return w.le ? b.readUInt32LE(at) : b.readUInt32BE(at);
}
/** an address or offset: a 64-bit one beyond 2^53 is no offset into any file we read */
function addr(b: Buffer, at: number, w: Word): number {
  if (!w.is64) return u32(b, at, w);
  const v = w.le ? b.readBigUInt64LE(at) : b.readBigUInt64BE(at);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.NaN : Number(v);
}

function cString(b: Buffer, at: number): string | undefined {
  if (at < 0 || at >= b.length) return undefined;
  const end = b.indexOf(0, at);
  return b.toString("latin1", at, end < 0 ? b.length : end);
}

interface Segment {
  type: number;
  offset: number;
  vaddr: number;
  filesz: number;
}

/** The program's interpreter and needed libraries, or undefined when `read` does not give an ELF file. */
export async function readElfDeps(read: ReadAt): Promise<ElfDeps | undefined> {
  const head = await read(0, 64);
  if (head.length < 52 || head.readUInt32BE(0) !== 0x7f454c46) return undefined;
  const cls = head[4];
  const data = head[5];
  if ((cls !== 1 && cls !== 2) || (data !== 1 && data !== 2)) return undefined;
  const w: Word = { is64: cls === 2, le: data === 1 };
  if (w.is64 && head.length < 64) return undefined;
  const phoff = addr(head, w.is64 ? 0x20 : 0x1c, w);
  const phentsize = u16(head, w.is64 ? 0x36 : 0x2a, w);
  const phnum = u16(head, w.is64 ? 0x38 : 0x2c, w);
  const entSize = w.is64 ? 56 : 32;
  if (!Number.isFinite(phoff) || phentsize < entSize || phnum === 0 || phnum > MAX_PROGRAM_HEADERS) return undefined;
  const table = await read(phoff, phentsize * phnum);
  if (table.length < phentsize * phnum) return undefined;
  const segments: Segment[] = [];
  for (let i = 0; i < phnum; i++) {
    const at = i * phentsize;
    segments.push(
      w.is64
        ? { type: u32(table, at, w), offset: addr(table, at + 8, w), vaddr: addr(table, at + 16, w), filesz: addr(table, at + 32, w) }
        : { type: u32(table, at, w), offset: u32(table, at + 4, w), vaddr: u32(table, at + 8, w), filesz: u32(table, at + 16, w) },
    );
  }
  const deps: ElfDeps = { needed: [], rpath: [], runpath: [] };
  const interp = segments.find((s) => s.type === PT_INTERP);
  if (interp && interp.filesz > 0 && interp.filesz <= MAX_INTERP_BYTES) {
    const name = cString(await read(interp.offset, interp.filesz), 0);
    if (name) deps.interpreter = name;
  }
  const dyn = segments.find((s) => s.type === PT_DYNAMIC);
  if (!dyn || !(dyn.filesz > 0) || dyn.filesz > MAX_DYNAMIC_BYTES) return deps;
  const table2 = await read(dyn.offset, dyn.filesz);
  const dynSize = w.is64 ? 16 : 8;
  const tags: Array<[number, number]> = [];
  for (let at = 0; at + dynSize <= table2.length; at += dynSize) {
    const tag = w.is64 ? Number(w.le ? table2.readBigInt64LE(at) : table2.readBigInt64BE(at)) : u32(table2, at, w);
    if (tag === DT_NULL) break;
    tags.push([tag, addr(table2, at + dynSize / 2, w)]);
  }
  const strtabAddr = tags.find(([t]) => t === DT_STRTAB)?.[1];
  const strsz = tags.find(([t]) => t === DT_STRSZ)?.[1];
  if (strtabAddr === undefined || strsz === undefined || !(strsz > 0) || strsz > MAX_STRTAB_BYTES) return deps;
  // DT_STRTAB is an address: the loadable segment holding it says where that is in the file
  const load = segments.find((s) => s.type === PT_LOAD && s.vaddr <= strtabAddr && strtabAddr < s.vaddr + s.filesz);
  if (!load) return deps;
  const strtab = await read(load.offset + (strtabAddr - load.vaddr), strsz);
  const str = (off: number) => cString(strtab, off);
  // a search path adds its directories once, and only so many: a lying file could otherwise list
  // thousands, each costing a lookup per library
  const addDirs = (list: string[], v: string | undefined) => {
    for (const d of v ? v.split(":") : []) {
      if (d && !list.includes(d) && deps.rpath.length + deps.runpath.length < MAX_SEARCH_DIRS) list.push(d);
    }
  };
  for (const [tag, val] of tags) {
    if (tag === DT_NEEDED) {
      const name = str(val);
      if (name && !deps.needed.includes(name) && deps.needed.length < MAX_NEEDED) deps.needed.push(name);
    } else if (tag === DT_RPATH) addDirs(deps.rpath, str(val));
    else if (tag === DT_RUNPATH) addDirs(deps.runpath, str(val));
  }
  return deps;
}

/** a shared library's file name as DT_NEEDED gives it: `libm.so.6`, `ld-linux-x86-64.so.2`, `libpython3.11.so.1.0` */
const LIBRARY_NAME = /^(?:lib|ld-)[A-Za-z0-9_.+-]*\.so(?:\.[0-9]+)*$/;
const MAX_NAME_BYTES = 255;

/**
 * Library names an ELF file's first bytes hold as C strings, in the order they appear: a guess at its
 * DT_NEEDED entries from `.dynstr` (which sits near the start of the file) before the `.dynamic` table
 * that says which strings those are (often megabytes further in) is here. A file that is not ELF
 * gives none. The names are hints: some may be version-requirement strings of the same libraries, and
 * the real ELF read still decides.
 */
export function libraryNamesIn(head: Buffer, max = MAX_NEEDED): string[] {
  if (head.length < 4 || head.readUInt32BE(0) !== 0x7f454c46) return [];
  const names: string[] = [];
  for (let at = 0; at < head.length && names.length < max; ) {
    let end = head.indexOf(0, at);
    if (end < 0) end = head.length;
    // cheap checks first: most strings of a binary are symbol names, far from "lib…" or "ld-…"
    if (end - at >= 6 && end - at <= MAX_NAME_BYTES && head[at] === 0x6c /* l */) {
      const s = head.toString("latin1", at, end);
      if (LIBRARY_NAME.test(s) && !names.includes(s)) names.push(s);
    }
    at = end + 1;
  }
  return names;
}
