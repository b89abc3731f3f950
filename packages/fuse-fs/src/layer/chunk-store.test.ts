import { randomBytes } from "node:crypto";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { ChunkStore, coalesce } from "./chunk-store.js";
import { FetchCounters } from "./counters.js";
import { BufferSource, MapCache, chunkedBlob, fakeInflate, fakeRef } from "../../test/helpers/fakes.js";

const log = pino({ level: "silent" });

/** A store over a blob of one gzip member per buffer, with fakes for the registry and the cache. */
function storeOf(datas: Buffer[], digest = "sha256:" + "a".repeat(64), abort = new AbortController()) {
  const { blob, chunks } = chunkedBlob(datas);
  const source = new BufferSource(blob);
  const cache = new MapCache();
  const counters = new FetchCounters();
  const store = new ChunkStore({
    ref: fakeRef,
    digest,
    source,
    cache,
    inflate: fakeInflate,
    counters,
    log,
    retry: { attempts: 3, delayMs: 1 },
    signal: abort.signal,
  });
  return { datas, blob, chunks, source, cache, counters, store };
}

function setup(n = 4, size = 1000) {
  return storeOf(Array.from({ length: n }, () => randomBytes(size)));
}

describe("coalesce", () => {
  it("should group touching members into one run and split at gaps and at the size cap", () => {
    const { chunks } = setup(5);
    const [a, b, c, d, e] = chunks as [typeof chunks[0], typeof chunks[0], typeof chunks[0], typeof chunks[0], typeof chunks[0]];
    expect(coalesce([c, a, b, e], 1e9)).toEqual([[a, b, c], [e]]);
    const cap = b.compressedEnd - a.compressedOffset;
    expect(coalesce([a, b, c, d], cap)).toEqual([[a, b], [c, d]]);
  });

  it("should split a run at the member count cap", () => {
    const { chunks } = setup(5);
    const [a, b, c, d, e] = chunks as [typeof chunks[0], typeof chunks[0], typeof chunks[0], typeof chunks[0], typeof chunks[0]];
    expect(coalesce([a, b, c, d, e], 1e9, 2)).toEqual([[a, b], [c, d], [e]]);
  });
});

describe("ChunkStore", () => {
  it("should fetch neighbouring missing chunks in one request and serve exact bytes", async () => {
    const { datas, chunks, source, store, cache } = setup(4);
    await store.ensure(chunks, "demand");
    expect(source.calls).toEqual([{ offset: 0, length: chunks[3]!.compressedEnd }]);
    expect(cache.puts).toBe(4);
    expect(await store.slice(chunks[2]!, 10, 20)).toEqual(datas[2]!.subarray(10, 30));
  });

  it("should take `along` chunks only into a request made for a missing chunk, never for a cache hit", async () => {
    const { chunks, source, store, cache } = setup(5);
    const [a, b, c, d, e] = chunks as [(typeof chunks)[0], (typeof chunks)[0], (typeof chunks)[0], (typeof chunks)[0], (typeof chunks)[0]];
    await store.ensure([a], "demand");
    expect(source.calls).toEqual([{ offset: a.compressedOffset, length: a.compressedEnd - a.compressedOffset }]);
    // a is local now: reading it again costs nothing, its neighbours included (a warm run fetched them)
    await store.ensure([a], "demand", undefined, [b, c]);
    expect(source.calls).toHaveLength(1);
    // c is missing: d and e ride along in its request
    await store.ensure([c], "demand", undefined, [d, e]);
    expect(source.calls.slice(1)).toEqual([{ offset: c.compressedOffset, length: e.compressedEnd - c.compressedOffset }]);
    await store.flush();
    expect(cache.puts).toBe(4);
  });

  it("should write what a read fetched to the cache even when the layer is closed right after the read", async () => {
    const abort = new AbortController();
    const { chunks, store, cache } = storeOf(Array.from({ length: 40 }, () => randomBytes(500)), undefined, abort);
    await store.ensure(chunks, "demand");
    // a released lease: the layer is closed while its writes (8 at a time) are still queued
    abort.abort();
    await store.flush();
    expect(cache.puts).toBe(40);
  });

  it("should share one fetch between concurrent readers of the same chunk", async () => {
    const { datas, chunks, source, store } = setup(2);
    let release!: () => void;
    source.gate = new Promise((r) => (release = r));
    const readers = Array.from({ length: 16 }, (_, i) => store.slice(chunks[1]!, i, 5));
    await new Promise((r) => setTimeout(r, 5));
    release();
    const got = await Promise.all(readers);
    expect(source.calls).toHaveLength(1);
    expect(got).toEqual(Array.from({ length: 16 }, (_, i) => datas[1]!.subarray(i, i + 5)));
  });

  it("should retry a failed fetch and then succeed", async () => {
    const { datas, chunks, source, store, counters } = setup(1);
    source.failNext = 2;
    expect(await store.slice(chunks[0]!, 0, 8)).toEqual(datas[0]!.subarray(0, 8));
    expect({ calls: source.calls.length, errors: counters.errors, requests: counters.requests }).toEqual({ calls: 3, errors: 2, requests: 1 });
  });

  it("should tell the source when bytes fail their check, so a mirror that sent them is passed over for the retry", async () => {
    const { datas, chunks, source, store } = setup(1);
    const bad = Buffer.from(source.blob);
    bad[chunks[0]!.compressedEnd - 12]! ^= 0xff;
    source.badUntilReported = bad;
    expect(await store.slice(chunks[0]!, 0, 8)).toEqual(datas[0]!.subarray(0, 8));
    expect({ calls: source.calls.length, reports: source.reports }).toEqual({ calls: 2, reports: 1 });
  });

  it("should fail with FUSEFS_FETCH_FAILED after bounded retries on bad bytes and cache nothing", async () => {
    const { chunks, source, store, cache } = setup(1);
    source.blob[chunks[0]!.compressedEnd - 12]! ^= 0xff;
    await expect(store.slice(chunks[0]!, 0, 8)).rejects.toMatchObject({ code: "FUSEFS_FETCH_FAILED" });
    expect({ calls: source.calls.length, cached: cache.map.size }).toEqual({ calls: 3, cached: 0 });
  });

  it("should hold background fetches while an on-demand read is waiting", async () => {
    const { chunks, source, store } = setup(3);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const reading = store.demand(() => gate);
    const bg = store.ensure([chunks[2]!], "background");
    await new Promise((r) => setTimeout(r, 10));
    expect(source.calls).toEqual([]);
    release();
    await reading;
    await bg;
    expect(source.calls).toEqual([{ offset: chunks[2]!.compressedOffset, length: chunks[2]!.compressedEnd - chunks[2]!.compressedOffset }]);
  });

  it("should finish a background fetch a reader came to wait for, even when it has to retry (no deadlock)", async () => {
    const { chunks, datas, source, store } = setup(2);
    // the background fetch's first attempt fails once the reader has joined it
    let release!: () => void;
    source.gate = new Promise<void>((r) => (release = r));
    source.failNext = 1;
    const bg = store.ensure([chunks[1]!], "background");
    await new Promise((r) => setTimeout(r, 5));
    expect(source.calls).toHaveLength(1);
    // a reader now needs the same chunk: it waits on the fetch in flight, and stays pending meanwhile
    const read = store.demand(() => store.slice(chunks[1]!, 0, 10));
    source.gate = undefined;
    release();
    const outcome = await Promise.race([read.then((b) => b.equals(datas[1]!.subarray(0, 10))), new Promise((r) => setTimeout(() => r("stuck"), 3000))]);
    expect(outcome).toBe(true);
    await bg;
  });
});

describe("large chunks", () => {
  const MiB = 1024 * 1024;
  /** 40 MiB that compress well, with bytes worth checking at the segment boundaries */
  function bigData(): Buffer {
    const b = Buffer.alloc(40 * MiB);
    for (let off = 0; off < b.length; off += MiB) randomBytes(64).copy(b, Math.max(0, off - 32));
    return b;
  }

  function largeSetup(data: Buffer) {
    const { chunks, source, cache, store } = storeOf([randomBytes(100), data], "sha256:" + "b".repeat(64));
    return { chunk: chunks[1]!, source, cache, store };
  }

  it("should split runs at the inflated-bytes cap, whatever the compressed span", () => {
    const MiB12 = 12 * MiB;
    const mk = (i: number) => ({ path: "f", fileOffset: i * MiB12, size: MiB12, compressedOffset: i * 100, compressedEnd: (i + 1) * 100, innerOffset: 0 });
    const [a, b, c] = [mk(0), mk(1), mk(2)];
    expect(coalesce([a, b, c], 1e9)).toEqual([[a, b], [c]]);
  });

  it("should stream a chunk bigger than LARGE_CHUNK_BYTES into cache segments and serve exact bytes across them", async () => {
    const data = bigData();
    const { chunk, cache, store } = largeSetup(data);
    await store.ensure([chunk], "demand");
    const ids = [...cache.map.keys()].map((k) => k.split("|")[1]).sort();
    expect(ids).toEqual([String(chunk.compressedOffset), ...Array.from({ length: 10 }, (_, i) => `${chunk.compressedOffset}#${i}`)].sort());
    expect(store.inMemory(chunk)).toBe(false);
    for (const [off, len] of [[0, 100], [4 * MiB - 50, 100], [9 * MiB + 7, 3 * MiB], [40 * MiB - 10, 10]] as const) {
      expect((await store.slice(chunk, off, len)).equals(data.subarray(off, off + len))).toBe(true);
    }
  });

  it("should fetch a large chunk again when one of its segments was evicted", async () => {
    const data = bigData();
    const { chunk, cache, source, store } = largeSetup(data);
    await store.ensure([chunk], "demand");
    const calls = source.calls.length;
    cache.map.delete(`sha256:${"b".repeat(64)}|${chunk.compressedOffset}#1`);
    expect((await store.slice(chunk, 3 * MiB, 2 * MiB)).equals(data.subarray(3 * MiB, 5 * MiB))).toBe(true);
    expect(source.calls.length).toBeGreaterThan(calls);
  });

  it("should refuse a large chunk whose bytes do not match its digest, and never mark it usable", async () => {
    const data = bigData();
    const { chunk, cache, store } = largeSetup(data);
    const lying = { ...chunk, chunkDigest: `sha256:${"0".repeat(64)}` };
    await expect(store.slice(lying, 0, 10)).rejects.toMatchObject({ code: "FUSEFS_BAD_CHUNK" });
    expect(cache.map.has(`sha256:${"b".repeat(64)}|${chunk.compressedOffset}`)).toBe(false);
    const short = { ...chunk, size: chunk.size + 1 };
    await expect(store.slice(short, 0, 10)).rejects.toMatchObject({ code: "FUSEFS_BAD_CHUNK" });
  });

  it("should refuse a chunk that cannot fit in half the blob cache with FUSEFS_CHUNK_TOO_LARGE", async () => {
    const { chunk, cache, source, store } = largeSetup(bigData());
    cache.maxBytes = 64 * MiB;
    await expect(store.slice(chunk, 0, 10)).rejects.toMatchObject({ code: "FUSEFS_CHUNK_TOO_LARGE", context: { size: 40 * MiB, cacheMaxBytes: 64 * MiB } });
    expect(source.calls).toEqual([]);
  });
});
