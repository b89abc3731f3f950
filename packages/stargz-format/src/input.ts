import type { Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import { Decompress } from "fzstd";
import { StargzError } from "./errors.js";

export type InputKind = "tar" | "gzip" | "zstd";

export function detectKind(head: Buffer): InputKind {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return "zstd";
  return "tar";
}

function bad(kind: InputKind, err: unknown): StargzError {
  return new StargzError("CONVERT_BAD_INPUT", `input is not a valid ${kind} stream: ${(err as Error).message}`, { kind }, { cause: err });
}

async function* gunzipAll(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const gz = createGunzip({ chunkSize: 256 * 1024 });
  let failed: unknown;
  // Feed from a separate task so the inflated side applies backpressure through `write`.
  const feeding = (async () => {
    try {
      for await (const c of chunks) if (!gz.write(c)) await new Promise((r) => gz.once("drain", r));
      gz.end();
    } catch (err) {
      failed = err;
      gz.destroy(err as Error);
    }
  })();
  try {
    for await (const out of gz) yield out as Buffer;
  } catch (err) {
    throw (failed as Error | undefined) ?? bad("gzip", err);
  } finally {
    gz.destroy();
    await feeding;
  }
  if (failed) throw failed as Error;
}

async function* unzstdAll(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const out: Buffer[] = [];
  const d = new Decompress((data) => {
    out.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  });
  try {
    for await (const c of chunks) {
      d.push(new Uint8Array(c.buffer, c.byteOffset, c.byteLength));
      while (out.length) yield out.shift()!;
    }
    d.push(new Uint8Array(0), true);
  } catch (err) {
    throw err instanceof StargzError ? err : bad("zstd", err);
  }
  while (out.length) yield out.shift()!;
}

/** The uncompressed tar inside `input` (plain tar, gzip — any number of members — or zstd), by magic. */
export async function* decompressedTar(input: Readable | AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const it = (input as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let len = 0;
  let done = false;
  while (len < 4) {
    const r = await it.next();
    if (r.done) {
      done = true;
      break;
    }
    const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    head.push(b);
    len += b.length;
  }
  const first = Buffer.concat(head);
  const rest: AsyncIterable<Buffer> = {
    async *[Symbol.asyncIterator]() {
      if (first.length) yield first;
      if (done) return;
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        yield Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
      }
    },
  };
  const kind = detectKind(first);
  if (kind === "gzip") yield* gunzipAll(rest);
  else if (kind === "zstd") yield* unzstdAll(rest);
  else yield* rest;
}
