import { describe, expect, it } from "vitest";
import { parseWwwAuthenticate } from "./challenge.js";

describe("parseWwwAuthenticate", () => {
  it("should parse a Bearer challenge with quoted params containing commas", () => {
    expect(parseWwwAuthenticate('Bearer realm="https://auth.io/token",service="reg.io",scope="repository:a/b:pull,push"')).toEqual([
      { scheme: "bearer", params: { realm: "https://auth.io/token", service: "reg.io", scope: "repository:a/b:pull,push" } },
    ]);
  });

  it("should parse several challenges and escapes", () => {
    expect(parseWwwAuthenticate(['Basic realm="a \\"q\\""', "Bearer realm=x, error=insufficient_scope"])).toEqual([
      { scheme: "basic", params: { realm: 'a "q"' } },
      { scheme: "bearer", params: { realm: "x", error: "insufficient_scope" } },
    ]);
    expect(parseWwwAuthenticate(undefined)).toEqual([]);
  });
});
