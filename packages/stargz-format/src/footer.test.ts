import { describe, expect, it } from "vitest";
import { estargzFooter, legacyStargzFooter, parseFooter } from "./footer.js";

describe("footers", () => {
  it("should write the 51-byte eStargz footer byte for byte as DESIGN.md gives it", () => {
    const f = estargzFooter(0x1234abcd);
    expect(f.toString("hex")).toEqual(
      "1f8b0804000000000" + "0ff" + "1a00" + "5347" + "1600" +
        Buffer.from("000000001234abcdSTARGZ").toString("hex") + "010000ffff" + "0000000000000000",
    );
    expect(f.length).toEqual(51);
  });

  it("should write the 47-byte legacy stargz footer", () => {
    const f = legacyStargzFooter(255);
    expect(f.toString("hex")).toEqual(
      "1f8b08040000000000ff1600" + Buffer.from("00000000000000ffSTARGZ").toString("hex") + "010000ffff0000000000000000",
    );
  });

  it("should detect both footers at the end of a longer buffer", () => {
    const pad = Buffer.alloc(100, 7);
    expect(parseFooter(Buffer.concat([pad, estargzFooter(42)]))).toEqual({ format: "estargz", tocOffset: 42, footerSize: 51 });
    expect(parseFooter(Buffer.concat([pad, legacyStargzFooter(42)]))).toEqual({ format: "stargz", tocOffset: 42, footerSize: 47 });
  });

  it("should refuse footers with a wrong marker, non-hex offset or missing trailer", () => {
    const good = estargzFooter(42);
    const badMarker = Buffer.from(good);
    badMarker.write("STARGY", 32, "latin1");
    const badHex = Buffer.from(good);
    badHex.write("z", 16, "latin1");
    const badTrailer = Buffer.from(good);
    badTrailer[50] = 1;
    expect([badMarker, badHex, badTrailer, Buffer.alloc(51), Buffer.alloc(10)].map(parseFooter)).toEqual([undefined, undefined, undefined, undefined, undefined]);
  });

  it("should be an empty gzip member that gunzip accepts", async () => {
    const { gunzipSync } = await import("node:zlib");
    expect(gunzipSync(estargzFooter(1)).length).toEqual(0);
    expect(gunzipSync(legacyStargzFooter(1)).length).toEqual(0);
  });
});
