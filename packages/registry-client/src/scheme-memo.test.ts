import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RegistryClient } from "./client.js";
import { fileSchemeMemo } from "./scheme-memo.js";

const DIGEST = `sha256:${"a".repeat(64)}`;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "lazypull-scheme-memo-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("fileSchemeMemo", () => {
  it("keeps plain-HTTP hosts across instances, forgets one that answered over TLS, and expires old ones", async () => {
    const path = join(dir, "memo-a.json");
    let t = 1_000_000_000_000;
    const a = fileSchemeMemo(path, () => t);
    a.remember("127.0.0.1:5000", "http:");
    a.remember("reg.example:443", "https:");
    await new Promise((r) => setTimeout(r, 50));
    const b = fileSchemeMemo(path, () => t);
    expect(b.plainHttp("127.0.0.1:5000")).toBe(true);
    expect(b.plainHttp("reg.example:443")).toBe(false);
    b.remember("127.0.0.1:5000", "https:");
    await new Promise((r) => setTimeout(r, 50));
    expect(fileSchemeMemo(path, () => t).plainHttp("127.0.0.1:5000")).toBe(false);
    fileSchemeMemo(path, () => t).remember("127.0.0.1:6000", "http:");
    await new Promise((r) => setTimeout(r, 50));
    t += 8 * 24 * 3600 * 1000;
    expect(fileSchemeMemo(path, () => t).plainHttp("127.0.0.1:6000")).toBe(false);
  });

  it("treats a broken file as an empty memo", async () => {
    const path = join(dir, "memo-b.json");
    await writeFile(path, "{not json");
    expect(fileSchemeMemo(path).plainHttp("127.0.0.1:5000")).toBe(false);
  });
});

describe("a client with a scheme memo", () => {
  let server: Server;
  let host: string;
  /** TLS handshakes the plain server saw (as garbage requests), and real requests */
  const seen = { handshakes: 0, requests: 0 };
  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.requests++;
      res.writeHead(200, { "content-length": "3", "docker-content-digest": DIGEST }).end(req.method === "HEAD" ? undefined : "abc");
    });
    server.on("clientError", (_err, socket) => {
      seen.handshakes++;
      socket.end("HTTP/1.1 400 Bad Request\r\n\r\n");
    });
    await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
    host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((ok) => server.close(() => ok())));

  it("asks a loopback registry that answered in plain HTTP before over HTTP at once, with no failed handshake", async () => {
    const path = join(dir, "memo-c.json");
    const first = new RegistryClient({ schemeMemo: fileSchemeMemo(path), registriesConf: false, registriesConfDir: false });
    await first.headBlob(`${host}/r`, DIGEST);
    await first.close();
    expect(seen).toEqual({ handshakes: 1, requests: 1 });
    await new Promise((r) => setTimeout(r, 50));
    expect(JSON.parse(await readFile(path, "utf8"))).toHaveProperty([host]);
    const second = new RegistryClient({ schemeMemo: fileSchemeMemo(path), registriesConf: false, registriesConfDir: false });
    expect(await second.headBlob(`${host}/r`, DIGEST)).toMatchObject({ size: 3 });
    await second.close();
    expect(seen).toEqual({ handshakes: 1, requests: 2 });
  });
});
