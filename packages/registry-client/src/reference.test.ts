import { describe, expect, it } from "vitest";
import { parseReference } from "./reference.js";

const D = `sha256:${"a".repeat(64)}`;

describe("parseReference", () => {
  it("should normalise docker hub short names", () => {
    const r = parseReference("debian");
    expect({ registry: r.registry, repository: r.repository, tag: r.tag, digest: r.digest, s: r.toString() }).toEqual({
      registry: "docker.io",
      repository: "library/debian",
      tag: "latest",
      digest: undefined,
      s: "docker.io/library/debian:latest",
    });
    expect(parseReference("index.docker.io/foo/bar:1").toString()).toEqual("docker.io/foo/bar:1");
  });

  it("should take a first component with a dot, colon or localhost as the registry", () => {
    expect(parseReference("127.0.0.1:5000/a/b:t").toString()).toEqual("127.0.0.1:5000/a/b:t");
    expect(parseReference("localhost/x").toString()).toEqual("localhost/x:latest");
    expect(parseReference("quay.io/x/y@" + D).toString()).toEqual(`quay.io/x/y@${D}`);
    expect(parseReference("[::1]:5000/x:1").registry).toEqual("[::1]:5000");
    expect(parseReference("foo/bar").toString()).toEqual("docker.io/foo/bar:latest");
  });

  it("should keep tag and digest together and use the digest as API reference", () => {
    const r = parseReference(`reg.io:443/a:v1@${D}`);
    expect([r.tag, r.digest, r.reference]).toEqual(["v1", D, D]);
  });

  it("should reject malformed references with REFERENCE_INVALID", () => {
    for (const bad of ["", "UPPER/case", "a@sha256:123", "a:b:c", "a//b", "reg.io/", "a:-tag", " a"]) {
      expect(() => parseReference(bad), bad).toThrow(expect.objectContaining({ code: "REFERENCE_INVALID" }));
    }
  });
});
