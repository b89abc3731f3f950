/**
 * glibc's /etc/ld.so.cache (the "glibc-ld.so.cache1.1" table ldconfig writes, alone or after the old
 * "ld.so-1.7.0" one): soname → the paths the dynamic loader would open, in the cache's order. Reading it
 * is how a prediction finds libraries that live outside the default directories (ld.so.conf.d,
 * alternatives such as openblas). Anything else parses to an empty map.
 */

const MAGIC = "glibc-ld.so.cache1.1";
const HEADER_BYTES = 48;
const ENTRY_BYTES = 24;
/** more entries than any real system has: a bigger count is a damaged file */
const MAX_ENTRIES = 65536;
const MAX_PATHS_PER_NAME = 4;

export function parseLdCache(buf: Buffer): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const start = buf.indexOf(MAGIC, 0, "latin1");
  if (start < 0 || start + HEADER_BYTES > buf.length) return out;
  // byte 28 says the writer's byte order (2 little, 3 big; 0 in old files, which were native = little here)
  const le = buf[start + 28] !== 3;
  const u32 = (at: number) => (le ? buf.readUInt32LE(at) : buf.readUInt32BE(at));
  const nlibs = u32(start + 20);
  if (nlibs > MAX_ENTRIES || start + HEADER_BYTES + nlibs * ENTRY_BYTES > buf.length) return out;
  const str = (off: number) => {
    const at = start + off;
    if (at >= buf.length) return undefined;
    const end = buf.indexOf(0, at);
    return end < 0 ? undefined : buf.toString("latin1", at, end);
  };
  for (let i = 0; i < nlibs; i++) {
    const at = start + HEADER_BYTES + i * ENTRY_BYTES;
    const key = str(u32(at + 4));
    const value = str(u32(at + 8));
    if (!key || !value) continue;
    const list = out.get(key);
    // one soname has an entry per ABI flavour at most (a handful): more is a damaged or lying file
    if (list) {
      if (list.length < MAX_PATHS_PER_NAME) list.push(value);
    } else out.set(key, [value]);
  }
  return out;
}
