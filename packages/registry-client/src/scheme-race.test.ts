// The first call to a registry that may speak plain HTTP (loopback, or `insecure`) goes out over HTTPS and
// plain HTTP at once: real node:http and node:https servers on loopback, a real RegistryClient.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
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
  it("reaches a plain-HTTP loopback registry before its TLS attempt has failed, and counts one request", async () => {
    const events: string[] = [];
    let plainSeen!: () => void;
    const plain = new Promise<void>((ok) => (plainSeen = ok));
    // the TLS attempt is answered (with the 400 a plain server gives a ClientHello) only once the plain
    // request is in, or after 3 s: asked one after the other, the plain request would come last
    const host = await listen(
      createServer((req, res) => {
        events.push(`plain ${req.method}`);
        plainSeen();
        const [headers, body] = blobAnswer(req.method);
        res.writeHead(200, headers).end(body);
      }).on("clientError", (_err, socket) => {
        void Promise.race([plain, new Promise((ok) => setTimeout(ok, 3000))]).then(() => {
          events.push("tls answered");
          socket.end("HTTP/1.1 400 Bad Request\r\n\r\n");
        });
      }),
    );
    const c = client();
    try {
      expect(await c.headBlob(`${host}/r`, DIGEST)).toMatchObject({ size: 3 });
      expect(events[0]).toBe("plain HEAD");
      expect(c.stats()).toMatchObject({ requests: 1, hosts: { [host]: { requests: 1 } } });
      // the host's scheme is known now: the next call is plain HTTP alone
      await c.headBlob(`${host}/r`, DIGEST);
      expect(events.filter((e) => e === "plain HEAD")).toHaveLength(2);
    } finally {
      await c.close();
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
