/**
 * How long opening a layer holds the event loop in one stretch: what every FUSE operation of a mount (and
 * every other container a daemon serves) waits behind while a new layer's TOC is parsed. For an eStargz
 * blob, in fresh processes: the longest gap between 1 ms timer ticks during `openStargz`, and during the
 * tree build alone done in one go (`buildTree`) and in stretches (`buildTreeYielding`, what the reader
 * uses), with the time each takes. The JSON is parsed before either build, outside the window.
 * `node --min-semi-space-size=16 --conditions=@lazypull/source --import tsx bench/loop-stall.ts BLOB.esgz [runs]`
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import { fileRangeReader, openStargz, parseFooter } from "../src/index.js";
import { buildTree, buildTreeYielding } from "../src/tree.js";

const [blob, runsArg, child] = process.argv.slice(2);
if (!blob) {
  process.stderr.write("usage: loop-stall.ts BLOB.esgz [runs]\n");
  process.exit(2);
}

/** Runs `work` while a 1 ms interval notes the longest gap between its ticks. */
async function stall(work: () => Promise<unknown>): Promise<{ ms: number; stallMs: number }> {
  let last = performance.now();
  let worst = 0;
  const tick = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
  }, 1);
  await new Promise((r) => setTimeout(r, 20));
  worst = 0;
  last = performance.now();
  const t = performance.now();
  await work();
  const ms = performance.now() - t;
  // the gap that ends with the work is only seen at the next tick
  await new Promise((r) => setTimeout(r, 10));
  clearInterval(tick);
  return { ms, stallMs: worst };
}

function parsedEntries(file: string): { entries: unknown[]; tocOffset: number } {
  const bytes = readFileSync(file);
  const footer = parseFooter(bytes.subarray(Math.max(0, bytes.length - 64)));
  if (!footer) throw new Error(`${file}: no eStargz footer`);
  const tar = gunzipSync(bytes.subarray(footer.tocOffset, bytes.length - footer.footerSize));
  const size = Number.parseInt(tar.toString("latin1", 124, 136).trim(), 8);
  const toc = JSON.parse(tar.toString("utf8", 512, 512 + size)) as { entries: unknown[] };
  return { entries: toc.entries, tocOffset: footer.tocOffset };
}

if (child) {
  // one measurement in this fresh process: cold, as a layer opens in a new `lazypull run`
  let r: { ms: number; stallMs: number };
  if (child === "open") r = await stall(async () => openStargz(await fileRangeReader(blob)));
  else {
    const { entries, tocOffset } = parsedEntries(blob);
    r = await stall(async () => (child === "sync" ? buildTree(entries, tocOffset, "bench") : buildTreeYielding(entries, tocOffset, "bench")));
  }
  process.stdout.write(JSON.stringify(r));
} else {
  const runs = Number(runsArg ?? 5);
  const self = fileURLToPath(import.meta.url);
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  for (const what of ["open", "sync", "yielding"]) {
    const got: { ms: number; stallMs: number }[] = [];
    for (let i = 0; i < runs; i++) {
      const out = execFileSync(process.execPath, [...process.execArgv, self, blob, String(runs), what], { encoding: "utf8" });
      got.push(JSON.parse(out) as { ms: number; stallMs: number });
    }
    const label = { open: "openStargz (tree in stretches)", sync: "tree build in one go", yielding: "tree build in stretches" }[what];
    console.log(`${label}: median ${median(got.map((g) => g.ms)).toFixed(0)} ms, longest stall median ${median(got.map((g) => g.stallMs)).toFixed(0)} ms (runs: ${got.map((g) => g.stallMs.toFixed(0)).join(", ")})`);
  }
}
