// Reading response bodies with the byte counter kept: whole (bounded), drained, or a slice of a body that
// ignored Range. Shared by every protocol step, so no step reads a body unbounded.
import type { Readable } from "node:stream";
import { RegistryError, type RegistryErrorContext } from "./errors.js";

/** A counter the transport shares with every body it hands out (bytes received from registries). */
export interface ByteCounter {
  bytesReceived: number;
}

/** Reads a whole response body, refusing more than `limit` bytes (manifests, configs, error bodies). */
export async function readAll(body: Readable, counter: ByteCounter, limit: number, ctx: RegistryErrorContext): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    n += chunk.length;
    counter.bytesReceived += chunk.length;
    if (n > limit) {
      body.destroy();
      throw new RegistryError("REGISTRY_BAD_RESPONSE", `response body larger than ${limit} bytes`, ctx);
    }
    chunks.push(chunk);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, n);
}

/** Consumes and discards a body so its connection goes back to the pool (small bodies only). */
export async function drain(body: Readable, counter: ByteCounter): Promise<void> {
  try {
    let n = 0;
    for await (const chunk of body as AsyncIterable<Buffer>) {
      n += chunk.length;
      counter.bytesReceived += chunk.length;
      if (n > 1 << 20) {
        body.destroy();
        return;
      }
    }
  } catch {
    // the connection is lost either way; nothing to report about a body we throw away
  }
}

/**
 * Reads bytes [skip, skip+length) of a body and drops the connection after that: used when a registry
 * answers a range request with the whole blob (200), so the range is sliced out instead of trusted.
 */
export async function sliceBody(body: Readable, counter: ByteCounter, skip: number, length: number): Promise<Buffer | undefined> {
  const out = Buffer.allocUnsafe(length);
  let pos = 0; // position in the body
  let got = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    counter.bytesReceived += chunk.length;
    const end = pos + chunk.length;
    if (end > skip && got < length) {
      const from = Math.max(0, skip - pos);
      const take = Math.min(chunk.length - from, length - got);
      chunk.copy(out, got, from, from + take);
      got += take;
    }
    pos = end;
    if (got === length) {
      body.destroy();
      break;
    }
  }
  return got === length ? out : undefined;
}
