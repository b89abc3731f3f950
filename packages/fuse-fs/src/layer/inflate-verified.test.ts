import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { chunkedBlob } from "../../test/helpers/fakes.js";
import { inflateVerified } from "./inflate-verified.js";

describe("inflateVerified", () => {
  it("should return the chunk's bytes when they match the digest", async () => {
    const data = randomBytes(70_000);
    const { blob, chunks } = chunkedBlob([data]);
    expect(await inflateVerified(chunks[0]!, blob, "sha256:x")).toEqual(data);
  });

  it("should refuse bytes that do not match the digest", async () => {
    const { blob, chunks } = chunkedBlob([randomBytes(1000)]);
    const lying = { ...chunks[0]!, chunkDigest: `sha256:${"0".repeat(64)}` };
    await expect(inflateVerified(lying, blob, "sha256:x")).rejects.toMatchObject({ code: "FUSEFS_BAD_CHUNK" });
  });

  it("should give the same answers for small members inflated in place", async () => {
    const data = randomBytes(300);
    const { blob, chunks } = chunkedBlob([data]);
    expect(await inflateVerified(chunks[0]!, blob, "sha256:x")).toEqual(data);
    await expect(inflateVerified({ ...chunks[0]!, chunkDigest: `sha256:${"0".repeat(64)}` }, blob, "sha256:x")).rejects.toMatchObject({ code: "FUSEFS_BAD_CHUNK" });
    const garbage = Buffer.from(blob);
    garbage[12] = (garbage[12] ?? 0) ^ 0xff;
    await expect(inflateVerified(chunks[0]!, garbage, "sha256:x")).rejects.toMatchObject({ code: "FUSEFS_BAD_CHUNK" });
  });

  it("should refuse a member shorter than the TOC says", async () => {
    const { blob, chunks } = chunkedBlob([randomBytes(1000)]);
    await expect(inflateVerified({ ...chunks[0]!, size: 2000 }, blob, "sha256:x")).rejects.toMatchObject({ code: "FUSEFS_BAD_CHUNK" });
  });
});
