import { createHash, randomBytes } from "node:crypto";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { inflateVerified } from "./inflate-verified.js";
import type { ChunkRef } from "./types.js";

/** A blob of gzip members, one per chunk, with the ChunkRefs that describe it. */
function chunkedBlob(datas: Buffer[]): { blob: Buffer; chunks: ChunkRef[] } {
  const chunks: ChunkRef[] = [];
  const members: Buffer[] = [];
  let off = 0;
  for (const data of datas) {
    const m = gzipSync(data);
    chunks.push({ path: "f", fileOffset: 0, size: data.length, compressedOffset: off, compressedEnd: off + m.length, innerOffset: 0, chunkDigest: `sha256:${createHash("sha256").update(data).digest("hex")}` });
    members.push(m);
    off += m.length;
  }
  return { blob: Buffer.concat(members), chunks };
}

describe("inflateVerified", () => {
  it("should return the chunk's bytes when they match the digest", async () => {
    const data = randomBytes(70_000);
    const { blob, chunks } = chunkedBlob([data]);
    expect(await inflateVerified(chunks[0]!, blob, "sha256:x")).toEqual(data);
  });

  it("should refuse bytes that do not match the digest", async () => {
    const { blob, chunks } = chunkedBlob([randomBytes(1000)]);
    const lying = { ...chunks[0]!, chunkDigest: `sha256:${"0".repeat(64)}` };
    await expect(inflateVerified(lying, blob, "sha256:x")).rejects.toMatchObject({ code: "ESTARGZ_CHUNK_DIGEST_MISMATCH" });
  });

  it("should give the same answers for small members inflated in place", async () => {
    const data = randomBytes(300);
    const { blob, chunks } = chunkedBlob([data]);
    expect(await inflateVerified(chunks[0]!, blob, "sha256:x")).toEqual(data);
    await expect(inflateVerified({ ...chunks[0]!, chunkDigest: `sha256:${"0".repeat(64)}` }, blob, "sha256:x")).rejects.toMatchObject({ code: "ESTARGZ_CHUNK_DIGEST_MISMATCH" });
    const garbage = Buffer.from(blob);
    garbage[12] = (garbage[12] ?? 0) ^ 0xff;
    await expect(inflateVerified(chunks[0]!, garbage, "sha256:x")).rejects.toMatchObject({ code: "ESTARGZ_CHUNK_CORRUPT" });
  });

  it("should refuse a member shorter than the TOC says", async () => {
    const { blob, chunks } = chunkedBlob([randomBytes(1000)]);
    await expect(inflateVerified({ ...chunks[0]!, size: 2000 }, blob, "sha256:x")).rejects.toMatchObject({ code: "ESTARGZ_CHUNK_SIZE_MISMATCH" });
  });
});
