import { randomBytes } from "node:crypto";
import type { ServerResponse } from "node:http";
import bcrypt from "bcryptjs";
import { startRegistry, type RegistryProcess } from "@lazypull/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RegistryClient, parseReference } from "../src/index.js";
import { forward, makeImage, pushImage, sha256, startFront, type Front } from "./helpers.js";

const BLOB_GET = /^\/v2\/.+\/blobs\/(sha256:[a-f0-9]{64})$/;
const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString("base64")}`;

let reg: RegistryProcess;
const blob = randomBytes(100_000);
const digest = sha256(blob);
const fronts: Front[] = [];
const clients: RegistryClient[] = [];

function client(opts: ConstructorParameters<typeof RegistryClient>[0] = {}): RegistryClient {
  const c = new RegistryClient({ authFiles: [], registriesConf: false, retry: { baseDelayMs: 5, maxDelayMs: 2000 }, ...opts });
  clients.push(c);
  return c;
}

async function front(handle: Parameters<typeof startFront>[0]): Promise<Front> {
  const f = await startFront(handle);
  fronts.push(f);
  return f;
}

beforeAll(async () => {
  reg = await startRegistry({ htpasswd: `u:${bcrypt.hashSync("p", 4)}\n` });
  const c = client({ credentials: { [reg.host]: { username: "u", password: "p" } } });
  await c.pushBlob(`${reg.host}/f/blob`, digest, blob.length, blob);
});
afterAll(async () => {
  for (const c of clients) await c.close();
  for (const f of fronts) await f.close();
  await reg?.stop();
});

describe("a registry that redirects blob GETs to another host", () => {
  it("should follow the redirect without sending the registry's credentials, and re-resolve an expired URL once", async () => {
    let expireNext = 1; // the first signed URL handed out is already expired
    const storage = await front((req, res) => {
      const m = /^\/blob\/(sha256:[a-f0-9]{64})\?sig=(\d+)$/.exec(req.url ?? "");
      if (!m) return void res.writeHead(404).end();
      if (Number(m[2]) <= expireNext) return void res.writeHead(403).end("expired");
      // storage serves the bytes itself, with its own access to the registry
      forward(reg.host, req, res, (h) => void (h.authorization = basic("u", "p")), `/v2/f/blob/blobs/${m[1]}`);
    });
    let sig = 0;
    const regFront = await front((req, res) => {
      const m = BLOB_GET.exec(req.url ?? "");
      if (req.method === "GET" && m && req.headers.authorization) {
        res.writeHead(307, { location: `${storage.url}/blob/${m[1]}?sig=${++sig}` }).end();
        return;
      }
      forward(reg.host, req, res);
    });
    const c = client({ credentials: { [regFront.host]: { username: "u", password: "p" } } });
    const ref = parseReference(`${regFront.host}/f/blob`);
    expect(await c.fetchRange(ref, digest, { offset: 1000, length: 100 })).toEqual(blob.subarray(1000, 1100));
    expect(await c.fetchRanges(ref, digest, [{ offset: 0, length: 10 }, { offset: 99_990, length: 10 }])).toEqual([blob.subarray(0, 10), blob.subarray(99_990)]);
    expect(await c.getBlob(ref, digest)).toEqual(blob);
    expect(storage.seen.map((r) => [r.path.replace(/sha256:[a-f0-9]+/, "D"), r.headers.authorization ?? null])).toEqual([
      ["/blob/D?sig=1", null],
      ["/blob/D?sig=2", null],
      ["/blob/D?sig=3", null],
      ["/blob/D?sig=4", null],
    ]);
    // the first GET went to the registry twice: once for the expired URL and once to re-resolve
    expect(regFront.seen.filter((r) => r.method === "GET" && BLOB_GET.test(r.path)).length).toEqual(5);
    expect(c.stats().redirects).toEqual(4);

    // a target that stays forbidden is reported, not retried for ever
    expireNext = Infinity;
    await expect(c.fetchRange(ref, digest, { offset: 0, length: 1 })).rejects.toMatchObject({
      code: "REGISTRY_DENIED",
      context: { registry: regFront.host, repository: "f/blob", digest, status: 403 },
    });
  });
});

describe("a faulty registry front", () => {
  it("should retry dropped connections, 500 and 429 (honouring Retry-After) and then succeed", async () => {
    let n = 0;
    const f = await front((req, res) => {
      n++;
      if (n === 1) return void req.socket.destroy();
      if (n === 2) return void res.writeHead(500).end("boom");
      if (n === 3) return void res.writeHead(429, { "retry-after": "1" }).end();
      forward(reg.host, req, res);
    });
    const c = client({ credentials: { [f.host]: { username: "u", password: "p" } } });
    const t0 = Date.now();
    expect(await c.fetchRange(parseReference(`${f.host}/f/blob`), digest, { offset: 5, length: 5 })).toEqual(blob.subarray(5, 10));
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(1000);
    expect(c.stats().retries).toEqual(3);
  });

  it("should give up with REGISTRY_UNAVAILABLE after the attempt budget, and stop at once when aborted", async () => {
    const f = await front((_req, res) => void res.writeHead(503).end());
    const c = client({ retry: { maxAttempts: 3, baseDelayMs: 5 } });
    await expect(c.headBlob(`${f.host}/f/blob`, digest)).rejects.toMatchObject({
      code: "REGISTRY_UNAVAILABLE",
      context: { registry: f.host, repository: "f/blob", digest, status: 503, attempts: 3 },
    });
    expect(f.seen.length).toEqual(3);

    const slow = await front((_req, res) => void res.writeHead(429, { "retry-after": "60" }).end());
    const c2 = client({ retry: { maxDelayMs: 60_000, maxTotalMs: 120_000 } });
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error("cancelled by test")), 100);
    const t0 = Date.now();
    await expect(c2.getManifest(`${slow.host}/f/x:1`, { signal: ac.signal })).rejects.toThrow("cancelled by test");
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});

describe("range handling at awkward registries", () => {
  it("should slice ranges out of 200 answers when a front ignores Range, or refuse if asked to", async () => {
    const f = await front((req, res) => forward(reg.host, req, res, (h) => void delete h.range));
    const c = client({ credentials: { [f.host]: { username: "u", password: "p" } } });
    const ref = parseReference(`${f.host}/f/blob`);
    expect(await c.fetchRange(ref, digest, { offset: 50_000, length: 3 })).toEqual(blob.subarray(50_000, 50_003));
    expect(await c.fetchRanges(ref, digest, [{ offset: 7, length: 3 }, { offset: 90_000, length: 4 }])).toEqual([blob.subarray(7, 10), blob.subarray(90_000, 90_004)]);
    expect(c.stats()).toMatchObject({ rangeIgnored: 2, multiRangeFallbacks: 1 });
    await expect(c.fetchRange(ref, digest, { offset: 200_000, length: 1 })).rejects.toMatchObject({ code: "REGISTRY_RANGE_NOT_SATISFIABLE" });
    const strict = client({ credentials: { [f.host]: { username: "u", password: "p" } }, onRangeIgnored: "error" });
    await expect(strict.fetchRange(ref, digest, { offset: 1, length: 1 })).rejects.toMatchObject({ code: "REGISTRY_RANGE_UNSUPPORTED", context: { digest, status: 200 } });
  });

  it("should fall back to parallel single ranges when multi-range is refused with 400, and remember it", async () => {
    const f = await front((req, res) => {
      if (typeof req.headers.range === "string" && req.headers.range.includes(",")) return void res.writeHead(400).end();
      forward(reg.host, req, res);
    });
    const c = client({ credentials: { [f.host]: { username: "u", password: "p" } } });
    const ref = parseReference(`${f.host}/f/blob`);
    const ranges = [{ offset: 1, length: 2 }, { offset: 3000, length: 20 }, { offset: 99_999, length: 1 }];
    const want = ranges.map((r) => blob.subarray(r.offset, r.offset + r.length));
    expect(await c.fetchRanges(ref, digest, ranges)).toEqual(want);
    const rangeGets = () => f.seen.filter((r) => r.headers.range).map((r) => r.headers.range);
    // the 400 came before any auth challenge, so each parallel single range is challenged (401) once, then sent with credentials
    const [multi, ...singles] = rangeGets();
    expect([multi, singles.sort()]).toEqual([
      "bytes=1-2,3000-3019,99999-99999",
      ["bytes=1-2", "bytes=1-2", "bytes=3000-3019", "bytes=3000-3019", "bytes=99999-99999", "bytes=99999-99999"],
    ]);
    f.seen.length = 0;
    expect(await c.fetchRanges(ref, digest, ranges)).toEqual(want);
    expect(rangeGets()).toEqual(["bytes=1-2", "bytes=3000-3019", "bytes=99999-99999"]);
    expect(c.stats().multiRangeFallbacks).toEqual(1);
  });
});

describe("range answers cut short", () => {
  /**
   * A 206 for `ranges` of the test blob whose body ends halfway: one multipart/byteranges body, or one plain
   * part (a single range, or several merged into one). The framing is honest (Content-Length is what is
   * sent); the body just ends before its Content-Range (or its parts) do.
   */
  function cut206(res: ServerResponse, ranges: [number, number][], merged = false): void {
    let body: Buffer;
    let headers: Record<string, string>;
    if (ranges.length === 1 || merged) {
      const s = Math.min(...ranges.map((r) => r[0]));
      const e = Math.max(...ranges.map((r) => r[1]));
      body = blob.subarray(s, e + 1);
      headers = { "content-range": `bytes ${s}-${e}/${blob.length}`, "content-type": "application/octet-stream" };
    } else {
      const parts = ranges.flatMap(([s, e]) => [
        Buffer.from(`\r\n--CUT\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes ${s}-${e}/${blob.length}\r\n\r\n`),
        blob.subarray(s, e + 1),
      ]);
      body = Buffer.concat([...parts, Buffer.from("\r\n--CUT--\r\n")]);
      headers = { "content-type": "multipart/byteranges; boundary=CUT" };
    }
    const sent = body.subarray(0, Math.floor(body.length / 2));
    res.writeHead(206, { ...headers, "content-length": String(sent.length) }).end(sent);
  }
  const rangesOf = (h: string | string[] | undefined) =>
    String(h ?? "").replace(/^bytes=/, "").split(",").map((r) => r.split("-").map(Number) as [number, number]);

  it("should retry a 206 whose body is shorter than its Content-Range like a dropped connection, single and multi-range", async () => {
    const faults: ("plain" | "multipart" | "merged")[] = ["plain"];
    const f = await front((req, res) => {
      if (req.method === "GET" && BLOB_GET.test(req.url ?? "") && req.headers.range && faults.length > 0) {
        return cut206(res, rangesOf(req.headers.range), faults.shift() === "merged");
      }
      forward(reg.host, req, res);
    });
    const c = client({ credentials: { [f.host]: { username: "u", password: "p" } } });
    const ref = parseReference(`${f.host}/f/blob`);
    expect(await c.fetchRange(ref, digest, { offset: 100, length: 1000 })).toEqual(blob.subarray(100, 1100));
    expect(c.stats()).toMatchObject({ retries: 1 });
    // a cut multipart body, then a cut answer that merged the ranges into one: both retried, and the
    // registry still counts as able to answer several ranges at once
    faults.push("multipart", "merged");
    const ranges = [{ offset: 10, length: 100 }, { offset: 50_000, length: 2000 }, { offset: 99_000, length: 1000 }];
    expect(await c.fetchRanges(ref, digest, ranges)).toEqual(ranges.map((r) => blob.subarray(r.offset, r.offset + r.length)));
    expect(c.stats()).toMatchObject({ retries: 3, multiRangeHits: 1, multiRangeFallbacks: 0 });
    expect(await c.fetchRanges(ref, digest, ranges)).toEqual(ranges.map((r) => blob.subarray(r.offset, r.offset + r.length)));
    expect(c.stats()).toMatchObject({ retries: 3, multiRangeHits: 2, multiRangeFallbacks: 0 });
  });

  it("should give up on a registry that keeps cutting range bodies with REGISTRY_UNAVAILABLE that says so", async () => {
    const f = await front((req, res) => cut206(res, rangesOf(req.headers.range)));
    const c = client({ retry: { maxAttempts: 3, baseDelayMs: 5 } });
    const ref = parseReference(`${f.host}/f/blob`);
    const err = await c.fetchRange(ref, digest, { offset: 0, length: 10 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "REGISTRY_UNAVAILABLE", context: { registry: f.host, repository: "f/blob", digest, attempts: 3 } });
    expect((err as Error).message).toMatch(/failed after 3 attempt\(s\): range 0-9 of sha256:[a-f0-9]{64}: the body ended after 5 of 10 bytes$/);
    expect(f.seen.length).toEqual(3);
    await expect(c.fetchRanges(ref, digest, [{ offset: 0, length: 10 }, { offset: 500, length: 10 }])).rejects.toMatchObject({
      code: "REGISTRY_UNAVAILABLE",
      message: expect.stringMatching(/multipart\/byteranges body for sha256:[a-f0-9]{64} ended early/),
      context: { attempts: 3 },
    });
    expect(f.seen.length).toEqual(6);
  });
});

describe("untrustworthy content", () => {
  it("should refuse schema 1 manifests and content that does not match its digest", async () => {
    const img = makeImage([64]);
    const good = client({ credentials: { [reg.host]: { username: "u", password: "p" } } });
    await pushImage(good, `${reg.host}/f/img:1`, img);
    const f = await front((req, res) => {
      const url = req.url ?? "";
      if (url.endsWith("/manifests/old")) {
        res.writeHead(200, { "content-type": "application/vnd.docker.distribution.manifest.v1+prettyjws" });
        return void res.end(JSON.stringify({ schemaVersion: 1, name: "f/img", tag: "old", fsLayers: [] }));
      }
      if (req.method === "GET" && BLOB_GET.test(url)) {
        // same length, one byte flipped
        const bad = Buffer.from(img.layers[0]!.bytes);
        bad[10] = bad[10]! ^ 0xff;
        res.writeHead(200, { "content-length": bad.length, "content-type": "application/octet-stream" });
        return void res.end(bad);
      }
      if (url.endsWith("/manifests/1")) {
        res.writeHead(200, { "content-type": "application/vnd.oci.image.manifest.v1+json", "docker-content-digest": img.manifestDigest });
        return void res.end(Buffer.concat([img.manifest, Buffer.from(" ")]));
      }
      forward(reg.host, req, res, (h) => void (h.authorization = basic("u", "p")));
    });
    const c = client();
    await expect(c.getManifest(`${f.host}/f/img:old`)).rejects.toMatchObject({ code: "REGISTRY_SCHEMA1_UNSUPPORTED", context: { registry: f.host, repository: "f/img" } });
    await expect(c.getManifest(`${f.host}/f/img:1`)).rejects.toMatchObject({ code: "DIGEST_MISMATCH", context: { digest: img.manifestDigest } });
    const ref = parseReference(`${f.host}/f/img`);
    const d = img.layers[0]!.digest;
    await expect(c.getBlob(ref, d)).rejects.toMatchObject({ code: "DIGEST_MISMATCH", context: { digest: d, attempts: 3 } });
    const stream = await c.fetchBlob(ref, d);
    const read = async () => {
      for await (const _ of stream as AsyncIterable<Buffer>) void _;
    };
    await expect(read()).rejects.toMatchObject({ code: "DIGEST_MISMATCH", context: { digest: d, registry: f.host } });
  });
});

describe("a registry that corrupts one answer of a small blob", () => {
  it("should fetch the blob again and resolve the image (the config is retried like a layer chunk)", async () => {
    const img = makeImage([1000, 2000]);
    const good = client({ credentials: { [reg.host]: { username: "u", password: "p" } } });
    await pushImage(good, `${reg.host}/f/flaky:1`, img);
    let corrupted = 0;
    const f = await front((req, res) => {
      const m = BLOB_GET.exec(req.url ?? "");
      if (req.method === "GET" && m && corrupted === 0) {
        corrupted++;
        // the first blob answer (the config) arrives with one byte flipped
        forward(reg.host, req, res, (h) => void (h.authorization = basic("u", "p")), undefined, (body) => {
          const bad = Buffer.from(body);
          bad[0] = bad[0]! ^ 0xff;
          return bad;
        });
        return;
      }
      forward(reg.host, req, res, (h) => void (h.authorization = basic("u", "p")));
    });
    const c = client();
    const resolved = await c.resolve(`${f.host}/f/flaky:1`);
    expect(corrupted).toBe(1);
    expect(resolved.manifest.layers.map((l) => l.digest)).toEqual(img.layers.map((l) => l.digest));
    expect(c.stats().retries).toBeGreaterThanOrEqual(1);
  });
});
