import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RequestParser, startDelayProxy, type DelayProxy } from "./delay-proxy.js";

describe("RequestParser", () => {
  it("should count requests split across chunks and skip Content-Length bodies", () => {
    const seen: string[] = [];
    const p = new RequestParser((m, path, h) => seen.push(`${m} ${path} ${h.get("range") ?? ""}`));
    const stream = Buffer.from("GET /a HTTP/1.1\r\nRange: bytes=0-9\r\n\r\nPUT /b HTTP/1.1\r\nContent-Length: 6\r\n\r\nGET /xHEAD /c HTTP/1.1\r\n\r\n");
    for (let i = 0; i < stream.length; i += 7) p.push(stream.subarray(i, i + 7));
    expect(seen).toEqual(["GET /a bytes=0-9", "PUT /b ", "HEAD /c "]);
  });
});

describe("startDelayProxy", () => {
  let proxy: DelayProxy;
  const server = createServer((req, res) => res.end(req.url === "/big" ? Buffer.alloc(200_000, 1) : "ok"));
  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    proxy = await startDelayProxy({ target: { host: "127.0.0.1", port: (server.address() as AddressInfo).port }, rttMs: 100 });
  });
  afterAll(async () => {
    await proxy.close();
    await new Promise((r) => server.close(r));
  });

  it("should add the round-trip time and count requests and bytes", async () => {
    const t0 = performance.now();
    const res = await fetch(`http://${proxy.host}/big`);
    const body = await res.arrayBuffer();
    const ms = performance.now() - t0;
    expect(body.byteLength).toEqual(200_000);
    expect(ms).toBeGreaterThanOrEqual(95);
    expect(proxy.counters().requests).toEqual(1);
    expect(proxy.counters().bytesDown).toBeGreaterThan(200_000);
    expect(proxy.log().map((r) => `${r.method} ${r.path}`)).toEqual(["GET /big"]);
  });
});
