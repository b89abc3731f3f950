import { randomBytes } from "node:crypto";
import { Readable, Writable } from "node:stream";
import { MediaType, type Descriptor } from "@lazypull/registry-client";
import {
  convertToEstargz,
  emptyHeader,
  encodeHeader,
  END_OF_ARCHIVE,
  padding,
  SPECULATIVE_TAIL,
  TOC_DIGEST_ANNOTATION,
  TOC_LENGTH_ANNOTATION,
  TOC_OFFSET_ANNOTATION,
  tocLocationAnnotations,
} from "@lazypull/stargz-format";
import pino from "pino";
import { beforeAll, describe, expect, it } from "vitest";
import { BufferSource, MapCache, fakeRef } from "../../test/helpers/fakes.js";
import { PEEK_BYTES } from "./estargz-layer.js";
import { openLayer, prefetchToc, TOC_CACHE_ID } from "./open-layer.js";

const log = pino({ level: "silent" });
const files = Array.from({ length: 60 }, (_, i) => ({ name: `f${i}`, data: randomBytes(30_000) }));

let blob: Buffer;
let digest: string;
let tocDigest: string;
let tocOffset: number;
let tocLength: number;

beforeAll(async () => {
  const tar = Buffer.concat([
    ...files.flatMap(({ name, data }) => {
      const h = emptyHeader(name, "reg");
      h.size = data.length;
      return [encodeHeader(h), data, Buffer.alloc(padding(data.length))];
    }),
    END_OF_ARCHIVE,
  ]);
  const out: Buffer[] = [];
  const sink = new Writable({ write: (c: Buffer, _e, cb) => (out.push(c), cb()) });
  const r = await convertToEstargz(Readable.from([tar]), sink, { chunkSize: 16_384 });
  blob = Buffer.concat(out);
  ({ blobDigest: digest, tocDigest, tocOffset, tocLength } = r);
});

const descriptor = (annotations: Record<string, string>): Descriptor => ({ mediaType: MediaType.OciLayerGzip, digest, size: blob.length, annotations });
const converted = () => descriptor({ [TOC_DIGEST_ANNOTATION]: tocDigest, ...tocLocationAnnotations({ offset: tocOffset, length: tocLength, footerSize: 51 }) });

async function open(d: Descriptor, cache = new MapCache(), source = new BufferSource(blob)) {
  const layer = await openLayer({ ref: fakeRef, descriptor: d }, { source, cache, log, retry: { attempts: 1, delayMs: 1 } });
  /** the requests of the open itself (footer and TOC), before the read below fetches a chunk */
  const openCalls = [...source.calls];
  try {
    expect(layer.kind).toBe("estargz");
    expect(layer.readdir("")).toHaveLength(files.length);
    expect(await layer.read("f7", 0, 30_000)).toEqual(files[7]!.data);
  } finally {
    layer.close();
  }
  return { source: { calls: openCalls }, cache };
}

describe("openLayer: the TOC in one exact request, and from the cache on a warm host", () => {
  it("should fetch exactly [TOC offset, blob end) once when the descriptor says where the TOC is", async () => {
    expect(blob.length).toBeGreaterThan(SPECULATIVE_TAIL);
    const source = new BufferSource(blob);
    const cache = new MapCache();
    const layer = await openLayer({ ref: fakeRef, descriptor: converted() }, { source, cache, log, retry: { attempts: 1, delayMs: 1 } });
    layer.close();
    expect(source.calls).toEqual([{ offset: tocOffset, length: blob.length - tocOffset }]);
    // and kept: the blob's own bytes from the TOC to the end
    expect(cache.map.get(`${digest}|${TOC_CACHE_ID}`)).toEqual(blob.subarray(tocOffset));
  });

  it("should take the TOC prefetchToc fetched before the layer was opened: one request in all, verified and kept", async () => {
    const source = new BufferSource(blob);
    prefetchToc({ ref: fakeRef, descriptor: converted() }, source);
    await new Promise((r) => setImmediate(r));
    expect(source.calls).toHaveLength(1);
    const { source: opened, cache } = await open(converted(), new MapCache(), source);
    expect(opened.calls).toEqual([{ offset: tocOffset, length: blob.length - tocOffset }]);
    expect(cache.map.get(`${digest}|${TOC_CACHE_ID}`)).toEqual(blob.subarray(tocOffset));
    // claimed once: the next open of the layer asks (here: the cache) as usual
    const again = new BufferSource(blob);
    await open(converted(), new MapCache(), again);
    expect(again.calls[0]).toEqual({ offset: tocOffset, length: blob.length - tocOffset });
  });

  it("should not fetch ahead a TOC the cache already holds", async () => {
    const cache = new MapCache();
    await open(converted(), cache);
    const source = new BufferSource(blob);
    prefetchToc({ ref: fakeRef, descriptor: converted() }, source, cache);
    const layer = await openLayer({ ref: fakeRef, descriptor: converted() }, { source, cache, log, retry: { attempts: 1, delayMs: 1 } });
    layer.close();
    expect(source.calls).toEqual([]);
  });

    it("should never serve wrong bytes fetched ahead: a TOC that does not verify is fetched again", async () => {
    const bad = Buffer.from(blob);
    bad[tocOffset + 20]! ^= 0xff;
    prefetchToc({ ref: fakeRef, descriptor: converted() }, new BufferSource(bad));
    const { source } = await open(converted());
    expect(source.calls[0]).toEqual({ offset: tocOffset, length: blob.length - tocOffset });
  });

    it("should guess the tail as before for layers other converters made (no location annotations)", async () => {
    const { source } = await open(descriptor({ [TOC_DIGEST_ANNOTATION]: tocDigest }));
    expect(source.calls[0]).toEqual({ offset: blob.length - SPECULATIVE_TAIL, length: SPECULATIVE_TAIL });
  });

  it("should open from the cache with no request the second time, however many chunks it then reads from the cache", async () => {
    const cache = new MapCache();
    await open(converted(), cache);
    const second = new BufferSource(blob);
    const layer = await openLayer({ ref: fakeRef, descriptor: converted() }, { source: second, cache, log, retry: { attempts: 1, delayMs: 1 } });
    layer.close();
    expect(second.calls).toEqual([]);
  });

  it("should drop a corrupt cached TOC, fetch it again and keep the good one; never serve it", async () => {
    for (const corrupt of [
      (b: Buffer) => (b[10]! ^= 0x01, b), // inside the TOC member: fails to inflate or to match the digest
      (b: Buffer) => b.subarray(5), // cut: the footer no longer points at the entry's start
      () => Buffer.from("junk"),
    ]) {
      const cache = new MapCache();
      await open(converted(), cache);
      const key = `${digest}|${TOC_CACHE_ID}`;
      cache.map.set(key, corrupt(Buffer.from(cache.map.get(key)!)));
      const { source } = await open(converted(), cache);
      expect(source.calls).toEqual([{ offset: tocOffset, length: blob.length - tocOffset }]);
      expect(cache.map.get(key)).toEqual(blob.subarray(tocOffset));
    }
  });

  it("should not keep or use a cached TOC for a layer no TOC digest vouches for", async () => {
    const cache = new MapCache();
    const source = new BufferSource(blob);
    const layer = await openLayer(
      { ref: fakeRef, descriptor: descriptor(tocLocationAnnotations({ offset: tocOffset, length: tocLength, footerSize: 51 })) },
      { source, cache, log, allowUnverified: true, retry: { attempts: 1, delayMs: 1 } },
    );
    layer.close();
    expect(cache.map.has(`${digest}|${TOC_CACHE_ID}`)).toBe(false);
  });

  it("should follow the footer when the location lies, ignore an impossible one, and never serve another TOC", async () => {
    // points past the real TOC start: one more read, from where the footer says
    const late = { ...converted().annotations, ...tocLocationAnnotations({ offset: tocOffset + 200, length: tocLength - 200, footerSize: 51 }) };
    const a = await open(descriptor(late));
    expect(a.source.calls).toEqual([
      { offset: tocOffset + 200, length: blob.length - tocOffset - 200 },
      { offset: tocOffset, length: tocLength },
    ]);
    // absurd (does not end at the blob's end; a whole-blob "TOC"): ignored, the tail is guessed
    const absurd: Array<Record<string, string>> = [
      { [TOC_OFFSET_ANNOTATION]: "0", [TOC_LENGTH_ANNOTATION]: String(10 * blob.length) },
      { [TOC_OFFSET_ANNOTATION]: "zzz" },
    ];
    for (const bad of absurd) {
      const b = await open(descriptor({ ...converted().annotations, ...bad }));
      expect(b.source.calls[0]).toEqual({ offset: blob.length - SPECULATIVE_TAIL, length: SPECULATIVE_TAIL });
    }
    // a location pointing at other bytes cannot get past the TOC digest: a clear error, nothing served
    const fake = descriptor({ ...converted().annotations, [TOC_DIGEST_ANNOTATION]: `sha256:${"0".repeat(64)}` });
    await expect(openLayer({ ref: fakeRef, descriptor: fake }, { source: new BufferSource(blob), cache: new MapCache(), log, retry: { attempts: 1, delayMs: 1 } })).rejects.toMatchObject({
      code: "FUSEFS_BAD_LAYER",
    });
  });
});

describe("peekHead: the unverified start of a big file, ahead of its first chunk", () => {
  it("should inflate a short range of a big first member, and decline small files and chunks already here", async () => {
    // 1 MiB of incompressible bytes: one member far over PEEK_MIN_MEMBER_BYTES; and a small file
    const big = randomBytes(1024 * 1024);
    const small = randomBytes(1000);
    const tar = Buffer.concat([
      ...[
        ["big", big],
        ["small", small],
      ].flatMap(([name, data]) => {
        const h = emptyHeader(name as string, "reg");
        h.size = (data as Buffer).length;
        return [encodeHeader(h), data as Buffer, Buffer.alloc(padding((data as Buffer).length))];
      }),
      END_OF_ARCHIVE,
    ]);
    const out: Buffer[] = [];
    const sink = new Writable({ write: (c: Buffer, _e, cb) => (out.push(c), cb()) });
    const r = await convertToEstargz(Readable.from([tar]), sink, { chunkSize: 4 * 1024 * 1024 });
    const b = Buffer.concat(out);
    const d: Descriptor = { mediaType: MediaType.OciLayerGzip, digest: r.blobDigest, size: b.length, annotations: { [TOC_DIGEST_ANNOTATION]: r.tocDigest } };
    const source = new BufferSource(b);
    const cache = new MapCache();
    const layer = await openLayer({ ref: fakeRef, descriptor: d }, { source, cache, log, retry: { attempts: 1, delayMs: 1 } });
    try {
      const opened = source.calls.length;
      const puts = cache.puts;
      const head = await layer.peekHead!("big");
      expect(head!.length).toBeGreaterThan(PEEK_BYTES / 2);
      expect(head).toEqual(big.subarray(0, head!.length));
      // one short range, and nothing of it kept
      expect(source.calls.slice(opened)).toEqual([{ offset: expect.any(Number), length: PEEK_BYTES }]);
      expect(cache.puts).toBe(puts);
      expect(await layer.peekHead!("small")).toBeUndefined();
      expect(await layer.read("big", 0, big.length)).toEqual(big);
      expect(await layer.peekHead!("big")).toBeUndefined();
      expect(source.calls).toHaveLength(opened + 2);
    } finally {
      layer.close();
    }
  });
});
