/**
 * Memory stays bounded whatever the layer size: convert a generated 1 GiB layer (64 files of 16 MiB)
 * streaming, and again with a prioritised file (spooled to a temp file), and report peak RSS.
 * `node --conditions=@lazypull/source --import tsx bench/big-layer.ts [GiB]`
 */
import { Readable, Writable } from "node:stream";
import { convertToEstargz, emptyHeader, encodeHeader, END_OF_ARCHIVE } from "../src/index.js";

const GIB = Number(process.argv[2] ?? 1);
const FILE = 16 << 20;
const files = Math.round((GIB * 2 ** 30) / FILE);
const block = Buffer.alloc(1 << 20);
for (let i = 0; i < block.length; i++) block[i] = (i * 2654435761) >>> 27; // compressible, not trivial

function* layer(): Generator<Buffer> {
  for (let f = 0; f < files; f++) {
    const h = emptyHeader(`data/file-${f}`, "reg");
    h.size = FILE;
    yield encodeHeader(h);
    for (let off = 0; off < FILE; off += block.length) {
      const b = Buffer.from(block);
      b.writeUInt32BE(f * 1000 + off / block.length, 0);
      yield b;
    }
  }
  yield END_OF_ARCHIVE;
}

let out = 0;
const sink = () => new Writable({ write: (c: Buffer, _e, cb) => ((out += c.length), cb()) });
for (const prioritizedFiles of [[], [`data/file-${files - 1}`]]) {
  out = 0;
  const t0 = performance.now();
  const r = await convertToEstargz(Readable.from(layer()), sink(), { level: 1, prioritizedFiles });
  const s = (performance.now() - t0) / 1000;
  console.log(
    `${prioritizedFiles.length ? "spooled (prioritised)" : "streaming"}: ${(r.uncompressedSize / 2 ** 30).toFixed(2)} GiB in ${s.toFixed(1)} s, blob ${(out / 2 ** 20).toFixed(0)} MiB, peak RSS so far ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`,
  );
}
