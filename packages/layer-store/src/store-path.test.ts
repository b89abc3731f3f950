import { describe, expect, it } from "vitest";
import { decodeReference, encodeReference, parseStorePath } from "./store-path.js";

const D = `sha256:${"ab".repeat(32)}`;

describe("store paths", () => {
  const ref = "127.0.0.1:5000/lazy/debian:esgz";
  const enc = encodeReference(ref);

  it("should name a layer and its files by base64(reference)/digest, as containers/storage joins them", () => {
    expect(enc).toBe(Buffer.from(ref).toString("base64"));
    expect(parseStorePath("/")).toEqual({ kind: "root" });
    expect(parseStorePath(`/${enc}`)).toEqual({ kind: "image", encoded: enc });
    expect(parseStorePath(`/${enc}/${D}`)).toEqual({ kind: "layer", reference: ref, digest: D });
    expect(parseStorePath(`/${enc}/${D}/diff`)).toEqual({ kind: "file", reference: ref, digest: D, name: "diff" });
    expect(parseStorePath(`/${enc}/${D}/info`)).toEqual({ kind: "file", reference: ref, digest: D, name: "info" });
    expect(parseStorePath(`/${enc}/${D}/blob`)).toEqual({ kind: "file", reference: ref, digest: D, name: "blob" });
    expect(parseStorePath(`/${enc}/${D}/use`)).toEqual({ kind: "use", reference: ref, digest: D });
  });

  it("should follow a reference whose base64 has a '/' across directories", () => {
    // base64 makes '/' only from 6 one-bits, which in ASCII means a '?' at a position 2 mod 3: no
    // valid reference has one, but the store must not break on a name split into directories
    const reference = "ab?cd.example/x:1";
    const encoded = encodeReference(reference);
    expect(encoded.startsWith("YWI/")).toBe(true);
    expect(parseStorePath("/YWI")).toEqual({ kind: "image", encoded: "YWI" });
    expect(parseStorePath(`/${encoded}/${D}/diff`)).toEqual({ kind: "file", reference, digest: D, name: "diff" });
  });

  it("should refuse names that are not what podman makes", () => {
    expect(parseStorePath("/not base64")).toBeUndefined();
    expect(parseStorePath(`/${enc}/sha256:short`)).toBeUndefined();
    expect(parseStorePath(`/${enc}/${D}/other`)).toBeUndefined();
    expect(parseStorePath(`/${enc}/${D}/diff/etc`)).toBeUndefined();
    expect(parseStorePath(`/AAAA/${D}`)).toBeUndefined(); // decodes to control bytes
    expect(decodeReference("YQ")).toBeUndefined(); // unpadded: podman pads
    expect(decodeReference(encodeReference("a b"))).toBeUndefined();
  });
});
