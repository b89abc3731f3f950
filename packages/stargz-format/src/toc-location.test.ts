import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { convertBuffer, makeTar, memRange } from "../test/helpers.js";
import {
  FOOTER_SIZE_ANNOTATION,
  TOC_LENGTH_ANNOTATION,
  TOC_OFFSET_ANNOTATION,
  tocLocationAnnotations,
  tocLocationFromAnnotations,
} from "./annotations.js";
import { openStargz, SPECULATIVE_TAIL } from "./reader.js";

// ~1.5 MiB of incompressible data after the TOC's natural guess would not matter; what matters is a blob
// bigger than the speculative tail, so the exact read is visibly smaller than the guess
const files = Array.from({ length: 40 }, (_, i) => ({ header: { name: `./f${i}`, type: "reg" as const, mode: 0o644 }, data: randomBytes(40_000) }));

describe("TOC location annotations", () => {
  it("should be written by the converter and make the open one read of exactly TOC + footer", async () => {
    const { blob, result } = await convertBuffer(makeTar(files), { chunkSize: 16_384 });
    expect(blob.length).toBeGreaterThan(SPECULATIVE_TAIL);
    expect(result.tocOffset + result.tocLength + result.footerSize).toBe(blob.length);
    const annotations = tocLocationAnnotations({ offset: result.tocOffset, length: result.tocLength, footerSize: result.footerSize });
    expect(annotations).toEqual({
      [TOC_OFFSET_ANNOTATION]: String(result.tocOffset),
      [TOC_LENGTH_ANNOTATION]: String(result.tocLength),
      [FOOTER_SIZE_ANNOTATION]: "51",
    });
    const loc = tocLocationFromAnnotations(annotations, blob.length)!;
    const range = memRange(blob);
    const r = await openStargz(range, { expectedTocDigest: result.tocDigest, tocLocation: loc });
    expect(range.reads).toEqual([[result.tocOffset, blob.length - result.tocOffset]]);
    expect(r.tocOffset).toBe(result.tocOffset);
    // without it: the 1 MiB guess
    const guess = memRange(blob);
    await openStargz(guess, { expectedTocDigest: result.tocDigest });
    expect(guess.reads).toEqual([[blob.length - SPECULATIVE_TAIL, SPECULATIVE_TAIL]]);
  });

  it("should be absent for descriptors without them and refused when partial, not decimal or impossible", () => {
    const size = 10_000;
    const ok = { [TOC_OFFSET_ANNOTATION]: "9000", [TOC_LENGTH_ANNOTATION]: "949", [FOOTER_SIZE_ANNOTATION]: "51" };
    expect(tocLocationFromAnnotations(undefined, size)).toBeUndefined();
    expect(tocLocationFromAnnotations({ other: "1" }, size)).toBeUndefined();
    expect(tocLocationFromAnnotations(ok, size)).toEqual({ offset: 9000, length: 949, footerSize: 51 });
    const bad = [
      { [TOC_OFFSET_ANNOTATION]: "9000" },
      { ...ok, [TOC_LENGTH_ANNOTATION]: "0x3b5" },
      { ...ok, [TOC_LENGTH_ANNOTATION]: "-1" },
      { ...ok, [TOC_OFFSET_ANNOTATION]: "99999999999999999999" },
      { ...ok, [TOC_LENGTH_ANNOTATION]: "948" }, // does not end at the blob's end
      { ...ok, [FOOTER_SIZE_ANNOTATION]: "52", [TOC_LENGTH_ANNOTATION]: "948" },
      { [TOC_OFFSET_ANNOTATION]: "0", [TOC_LENGTH_ANNOTATION]: String(size - 51), [FOOTER_SIZE_ANNOTATION]: "51" }, // fine for this blob…
    ];
    for (const a of bad.slice(0, -1)) expect(() => tocLocationFromAnnotations(a, size), JSON.stringify(a)).toThrow(expect.objectContaining({ code: "ESTARGZ_BAD_TOC_LOCATION" }));
    // …but a TOC member no TOC under the cap can have is absurd
    expect(() => tocLocationFromAnnotations(bad.at(-1), size, { maxTocBytes: 1000 })).toThrow(expect.objectContaining({ code: "ESTARGZ_BAD_TOC_LOCATION" }));
    const huge = 200 << 20;
    expect(() =>
      tocLocationFromAnnotations({ [TOC_OFFSET_ANNOTATION]: "0", [TOC_LENGTH_ANNOTATION]: String(huge - 51), [FOOTER_SIZE_ANNOTATION]: "51" }, huge),
    ).toThrow(expect.objectContaining({ code: "ESTARGZ_BAD_TOC_LOCATION" }));
  });

  it("should never serve other bytes for a location that lies: the footer decides, at most one more read", async () => {
    const { blob, result } = await convertBuffer(makeTar(files), { chunkSize: 16_384 });
    const expected = (await openStargz(memRange(blob), { expectedTocDigest: result.tocDigest })).tocDigest;
    const footerSize = result.footerSize;
    // too late (the TOC starts earlier): the tail misses part of the member, which is read again from the footer's offset
    const late = result.tocOffset + 100;
    const lateRange = memRange(blob);
    const r1 = await openStargz(lateRange, { expectedTocDigest: result.tocDigest, tocLocation: { offset: late, length: blob.length - footerSize - late, footerSize } });
    expect([r1.tocOffset, r1.tocDigest]).toEqual([result.tocOffset, expected]);
    expect(lateRange.reads).toEqual([
      [late, blob.length - late],
      [result.tocOffset, result.tocLength],
    ]);
    // too early: more bytes than needed, same TOC
    const early = result.tocOffset - 5000;
    const earlyRange = memRange(blob);
    const r2 = await openStargz(earlyRange, { expectedTocDigest: result.tocDigest, tocLocation: { offset: early, length: blob.length - footerSize - early, footerSize } });
    expect([r2.tocOffset, r2.tocDigest, earlyRange.reads.length]).toEqual([result.tocOffset, expected, 1]);
    // a wrong footer size still ends at the footer the blob has
    const r3 = await openStargz(memRange(blob), { expectedTocDigest: result.tocDigest, tocLocation: { offset: result.tocOffset + 4, length: result.tocLength, footerSize: 47 } });
    expect(r3.tocDigest).toBe(expected);
    // impossible for the blob: a typed refusal before any read
    const none = memRange(blob);
    await expect(openStargz(none, { tocLocation: { offset: 0, length: 10, footerSize: 51 } })).rejects.toMatchObject({ code: "ESTARGZ_BAD_TOC_LOCATION" });
    expect(none.reads).toEqual([]);
  });
});
