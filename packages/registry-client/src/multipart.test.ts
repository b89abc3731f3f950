import { describe, expect, it } from "vitest";
import { byterangesBoundary, parseByteranges, parseContentRange, splitByteranges } from "./multipart.js";

function multipart(boundary: string, parts: { start: number; data: Buffer }[], total = 1000): Buffer {
  const bufs: Buffer[] = [];
  for (const p of parts) {
    bufs.push(Buffer.from(`\r\n--${boundary}\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes ${p.start}-${p.start + p.data.length - 1}/${total}\r\n\r\n`));
    bufs.push(p.data);
  }
  bufs.push(Buffer.from(`\r\n--${boundary}--\r\n`));
  return Buffer.concat(bufs);
}

describe("multipart/byteranges", () => {
  it("should split parts by their Content-Range lengths, even when data contains the boundary", () => {
    const a = Buffer.from("--BOUND\r\n--BOUND--");
    const b = Buffer.from([0, 1, 2, 255]);
    expect(parseByteranges(multipart("BOUND", [{ start: 10, data: a }, { start: 500, data: b }]), "BOUND")).toEqual([
      { start: 10, end: 10 + a.length - 1, data: a },
      { start: 500, end: 503, data: b },
    ]);
  });

  it("should return undefined for bodies that are not well formed", () => {
    const good = multipart("X", [{ start: 0, data: Buffer.from("hello") }]);
    expect(parseByteranges(good.subarray(0, good.length - 12), "X")).toBeUndefined();
    expect(parseByteranges(Buffer.from("garbage"), "X")).toBeUndefined();
    expect(parseByteranges(Buffer.from("--X\r\nContent-Type: a\r\n\r\nhello\r\n--X--"), "X")).toBeUndefined();
  });

  it("should read boundaries and content ranges", () => {
    expect(byterangesBoundary('multipart/byteranges; boundary="a b"')).toEqual("a b");
    expect(byterangesBoundary("multipart/byteranges; boundary=3d6b")).toEqual("3d6b");
    expect(byterangesBoundary("application/octet-stream")).toBeUndefined();
    expect(parseContentRange("bytes 5-9/100")).toEqual({ start: 5, end: 9, total: 100 });
    expect(parseContentRange("bytes 5-9/*")).toEqual({ start: 5, end: 9 });
    expect(parseContentRange("bytes 9-5/100")).toBeUndefined();
  });

  it("should tell a body cut short (any prefix of a good one) from a malformed one", () => {
    const a = Buffer.from("--B\r\n--B--");
    const good = multipart("B", [{ start: 10, data: a }, { start: 500, data: Buffer.from([0, 1, 2, 255]) }]);
    const whole = splitByteranges(good, "B");
    expect(whole).toEqual(parseByteranges(good, "B"));
    // the body is complete once the closing delimiter is in (what follows it is only the epilogue)
    const complete = good.lastIndexOf("--B--") + 5;
    for (let n = 0; n < good.length; n++) {
      expect([n, splitByteranges(good.subarray(0, n), "B")]).toEqual([n, n >= complete ? whole : "truncated"]);
    }
    const malformed = [
      "garbage that never was multipart",
      "--B\r\nContent-Type: a\r\n\r\nhello\r\n--B--", // a part without Content-Range
      "--B\r\nContent-Range: bytes 0-4/9\r\n\r\nhelloXX--B--", // data longer than its range
      "--Bjunk\r\n",
    ];
    for (const m of malformed) expect([m, splitByteranges(Buffer.from(m), "B")]).toEqual([m, "malformed"]);
  });
});
