import { randomBytes } from "node:crypto";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { ChunkStore, coalesce } from "./chunk-store.js";
import { FetchCounters } from "./counters.js";
import { BufferSource, MapCache, chunkedBlob, fakeInflate, fakeRef } from "../../test/helpers/fakes.js";

const log = pino({ level: "silent" });

function setup(n = 4, size = 1000) {
  const datas = Array.from({ length: n }, () => randomBytes(size));
  const { blob, chunks } = chunkedBlob(datas);
  const source = new BufferSource(blob);
  const cache = new MapCache();
  const counters = new FetchCounters();
  const store = new ChunkStore({
    ref: fakeRef,
    digest: "sha256:" + "a".repeat(64),
    source,
    cache,
    inflate: fakeInflate,
    counters,
    log,
    retry: { attempts: 3, delayMs: 1 },
    signal: new AbortController().signal,
  });
  return { datas, blob, chunks, source, cache, counters, store };
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
