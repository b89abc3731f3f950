// The first call to a registry that may speak plain HTTP (loopback, or `insecure`) goes out over HTTPS and
// plain HTTP at once: real node:http and node:https servers on loopback, a real RegistryClient.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { createServer as createNetServer, type AddressInfo, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeTestPki, type TestPki } from "@lazypull/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RegistryClient } from "./client.js";

/** the digest of the 3 bytes every blob answer carries, "abc" */
const DIGEST = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
const servers: Server[] = [];
let dir: string;
let pki: TestPki;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "lazypull-scheme-race-"));
  pki = await makeTestPki(join(dir, "pki"));
});
afterAll(async () => {
  for (const s of servers) s.closeAllConnections();
  await Promise.all(servers.map((s) => new Promise<void>((ok) => s.close(() => ok()))));
  await rm(dir, { recursive: true, force: true });
});

async function listen(srv: Server): Promise<string> {
  servers.push(srv);
  await new Promise<void>((ok) => srv.listen(0, "127.0.0.1", ok));
  return `127.0.0.1:${(srv.address() as AddressInfo).port}`;
}

const client = (o: { insecureRegistries?: string[] } = {}) => new RegistryClient({ registriesConf: false, registriesConfDir: false, ...o });
const blobAnswer = (method: string | undefined) => [{ "content-length": "3", "docker-content-digest": DIGEST }, method === "HEAD" ? undefined : "abc"] as const;

describe("the first call to a host that may speak plain HTTP", () => {
  it("takes a plain-HTTP loopback registry's answer without waiting for its TLS attempt to fail, and counts one request", async () => {
    const events: string[] = [];
    const held: Socket[] = [];
    // the TLS attempt is never answered (a slow refusal, at its extreme): asked one after the other, or
    // waiting for that attempt to fail, the call would not finish
    const host = await listen(
      createServer((req, res) => {
        events.push(`plain ${req.method}`);
        const [headers, body] = blobAnswer(req.method);
        res.writeHead(200, headers).end(body);
      }).on("clientError", (_err, socket: Socket) => {
        events.push("tls attempt");
        held.push(socket);
      }),
    );
    const c = client();
    try {
      expect(await c.headBlob(`${host}/r`, DIGEST)).toMatchObject({ size: 3 });
      expect(events).toContain("plain HEAD");
      expect(c.stats()).toMatchObject({ requests: 1, hosts: { [host]: { requests: 1 } } });
      // the host's scheme is known now: the next call is plain HTTP alone (the one TLS attempt seen, if
      // any, is the first call's, given up)
      await c.headBlob(`${host}/r`, DIGEST);
      expect(events.filter((e) => e === "plain HEAD")).toHaveLength(2);
      expect(events.filter((e) => e === "tls attempt").length).toBeLessThanOrEqual(1);
    } finally {
      for (const s of held) s.destroy();
      await c.close();
    }
  });

  it("takes the plain answer when the TLS attempt is reset before it comes (not only refused in plain HTTP)", async () => {
    // the plain answer comes late, the ClientHello is answered with a reset at once: the call must not
    // depend on which comes first
    const host = await listen(
      createServer((req, res) => {
        const [headers, body] = blobAnswer(req.method);
        setTimeout(() => res.writeHead(200, headers).end(body), 150);
      }).on("clientError", (_err, socket: Socket) => socket.destroy()),
    );
    const c = client();
    try {
      expect((await c.getBlob(`${host}/r`, DIGEST)).toString()).toBe("abc");
      expect(c.stats().requests).toBe(1);
    } finally {
      await c.close();
    }
  });

  it("does not take a plain answer that redirects to HTTPS as proof that the registry speaks plain HTTP", async () => {
    // one port, both protocols (as a TLS front that redirects plain requests does): plain HTTP answers 301 → https
    const cert = await readFile(pki.serverCert);
    const key = await readFile(pki.serverKey);
    const seen = { https: 0, plain: 0 };
    const tls = createHttpsServer({ cert, key }, (req, res) => {
      // the client's own TLS attempt comes first, and is answered after the redirected plain attempt
      const wait = seen.https++ === 0 ? 300 : 0;
      const [headers, body] = blobAnswer(req.method);
      setTimeout(() => res.writeHead(200, headers).end(body), wait);
    });
    let port = 0;
    const plain = createServer((req, res) => {
      seen.plain++;
      res.writeHead(301, { location: `https://127.0.0.1:${port}${req.url}` }).end();
    });
    const front = createNetServer((socket) => {
      socket.once("readable", () => {
        const first: Buffer | null = socket.read(1);
        if (!first) return socket.destroy();
        socket.unshift(first);
        // a TLS record starts with 0x16 (handshake)
        (first[0] === 0x16 ? tls : plain).emit("connection", socket);
      });
    });
    await new Promise<void>((ok) => front.listen(0, "127.0.0.1", ok));
    port = (front.address() as AddressInfo).port;
    const host = `127.0.0.1:${port}`;
    const c = client({ insecureRegistries: [host] });
    try {
      expect((await c.getBlob(`${host}/r`, DIGEST)).toString()).toBe("abc");
      expect(seen.plain).toBe(1);
      // the scheme kept is HTTPS: the next call goes there alone
      await c.getBlob(`${host}/r`, DIGEST);
      expect(seen.plain).toBe(1);
    } finally {
      await c.close();
      await new Promise<void>((ok) => front.close(() => ok()));
    }
  });

  it("keeps HTTPS for an insecure registry that speaks it: the plain attempt is dropped and not counted", async () => {
    const seen = { https: 0, plainTries: 0 };
    const cert = await readFile(pki.serverCert);
    const key = await readFile(pki.serverKey);
    const srv = createHttpsServer({ cert, key }, (req, res) => {
      seen.https++;
      const [headers, body] = blobAnswer(req.method);
      res.writeHead(200, headers).end(body);
    }).on("tlsClientError", () => seen.plainTries++);
    const host = await listen(srv);
    const c = client({ insecureRegistries: [host] });
    try {
      expect((await c.getBlob(`${host}/r`, DIGEST)).toString()).toBe("abc");
      expect(c.stats()).toMatchObject({ requests: 1, hosts: { [host]: { requests: 1 } } });
      await c.getBlob(`${host}/r`, DIGEST);
      expect(c.stats().requests).toBe(2);
      expect(seen.https).toBe(2);
      // one plain attempt (a failed handshake, as a TLS server sees it), alongside the first call only
      await new Promise((ok) => setTimeout(ok, 50));
      expect(seen.plainTries).toBe(1);
    } finally {
      await c.close();
    }
  });
});
