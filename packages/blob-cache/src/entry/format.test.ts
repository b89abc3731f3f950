import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { blockCount, decodeHeader, encodeHeader, verifyBlocks, type EntryHeader } from "./format.js";

const KEY = `sha256:${"ab".repeat(32)}\nfile:./usr/bin/ü`;

function header(payload: Buffer, blockSize = 1024): { bytes: Buffer; h: EntryHeader } {
  const bytes = encodeHeader(KEY, payload, blockSize);
  const h = decodeHeader(bytes, "p");
  if ("need" in h) throw new Error("short");
  return { bytes, h };
}

describe("entry format", () => {
  it("should round-trip a header with its key, length and one CRC per block", () => {
    const payload = randomBytes(2500);
    const { bytes, h } = header(payload);
    expect({ ...h, blockCrcs: h.blockCrcs.length }).toEqual({
      headerLen: bytes.length,
      blockSize: 1024,
      payloadLen: 2500,
      key: KEY,
      blockCrcs: 3,
    });
    expect(() => verifyBlocks(h, 0, 3, payload, "p")).not.toThrow();
    expect(() => verifyBlocks(h, 1, 3, payload.subarray(1024), "p")).not.toThrow();
  });

  it("should handle an empty payload", () => {
    const { h } = header(Buffer.alloc(0));
    expect([h.payloadLen, blockCount(0, 1024), h.blockCrcs.length]).toEqual([0, 0, 0]);
    expect(() => verifyBlocks(h, 0, 0, Buffer.alloc(0), "p")).not.toThrow();
  });

  it("should ask for more bytes when given only the start of a long header", () => {
    const { bytes } = header(randomBytes(300 * 1024), 1024);
    expect(decodeHeader(bytes.subarray(0, 100), "p")).toEqual({ need: bytes.length });
  });

  it("should detect every single flipped byte of the header", () => {
    const { bytes } = header(randomBytes(3000));
    for (let i = 0; i < bytes.length; i++) {
      const copy = Buffer.from(bytes);
      copy[i]! ^= 0x01;
      let rejected = false;
      try {
        const d = decodeHeader(copy, "p");
        rejected = "need" in d; // a flipped length field can only ever ask for more bytes, never parse
      } catch (err) {
        rejected = (err as { code?: string }).code === "BLOBCACHE_CORRUPT_ENTRY";
      }
      expect(rejected, `byte ${i}`).toBe(true);
    }
  });

  it("should detect a flipped payload byte and a short payload, naming the block", () => {
    const payload = randomBytes(2500);
    const { h } = header(payload);
    const flipped = Buffer.from(payload);
    flipped[2100]! ^= 0x80;
    expect(() => verifyBlocks(h, 0, 3, flipped, "p")).toThrowError(
      expect.objectContaining({ code: "BLOBCACHE_CORRUPT_ENTRY", context: { path: "p", offset: 2048 } }),
    );
    expect(() => verifyBlocks(h, 0, 3, payload.subarray(0, 2499), "p")).toThrowError(
      expect.objectContaining({ code: "BLOBCACHE_CORRUPT_ENTRY", context: { path: "p", offset: 0 } }),
    );
  });
});
