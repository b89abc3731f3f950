import { createServer, type Server } from "node:http";
import { createServer as createTcpServer, type AddressInfo, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RegistryClient } from "./client.js";
import { PlainSpares } from "./plain-spares.js";

const DIGEST = `sha256:${"a".repeat(64)}`;

describe("PlainSpares", () => {
  let server: ReturnType<typeof createTcpServer>;
  let port: number;
  let accepted = 0;
  beforeAll(async () => {
    server = createTcpServer((s) => {
      accepted++;
      s.on("error", () => undefined);
    });
    await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((ok) => server.close(() => ok())));

  it("hands out the connection it opened once, and nothing for a host it was not asked to open", async () => {
    const spares = new PlainSpares();
    spares.open(`127.0.0.1:${port}`);
    spares.open(`127.0.0.1:${port}`); // one per host:port
    expect(spares.take("127.0.0.1", port + 1)).toBeUndefined();
    const socket = spares.take("127.0.0.1", port);
    expect(socket).toBeDefined();
    await new Promise<void>((ok) => (socket!.connecting ? socket!.once("connect", () => ok()) : ok()));
    expect(socket!.remotePort).toBe(port);
    expect(spares.take("127.0.0.1", port)).toBeUndefined();
    expect(accepted).toBe(1);
    socket!.destroy();
    spares.close();
  });

  it("has nothing to hand out for a port that refused it", async () => {
    const closed = createTcpServer();
    await new Promise<void>((ok) => closed.listen(0, "127.0.0.1", ok));
    const dead = (closed.address() as AddressInfo).port;
    await new Promise<void>((ok) => closed.close(() => ok()));
    const spares = new PlainSpares();
    spares.open(`127.0.0.1:${dead}`);
    await new Promise((r) => setTimeout(r, 100));
    expect(spares.take("127.0.0.1", dead)).toBeUndefined();
    spares.close();
  });

  it("ignores what is not host[:port]", () => {
    const spares = new PlainSpares();
    spares.open("not a host:port:at all");
    spares.open("127.0.0.1:99999");
    expect(spares.take("not a host", 80)).toBeUndefined();
    spares.close();
  });
});

describe("a client's first request to a loopback registry that speaks plain HTTP", () => {
  let server: Server;
  let host: string;
  /** when each connection was accepted, when the TLS handshake was refused, which connection carried the request */
  const seen: { accepted: Map<Socket, number>; refusedAt?: number; requestOn?: Socket } = { accepted: new Map() };
  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.requestOn = req.socket;
      res.writeHead(200, { "content-length": "3", "docker-content-digest": DIGEST }).end(req.method === "HEAD" ? undefined : "abc");
    });
    server.on("connection", (s: Socket) => seen.accepted.set(s, performance.now()));
    server.on("clientError", (_err, socket) => {
      // the client cannot know to try plain HTTP before it reads this answer
      seen.refusedAt = performance.now();
      socket.end("HTTP/1.1 400 Bad Request\r\n\r\n");
    });
    await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
    host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((ok) => server.close(() => ok())));

  it("goes out on a connection opened while the TLS attempt was failing, not after", async () => {
    const client = new RegistryClient({ registriesConf: false, registriesConfDir: false });
    expect(await client.headBlob(`${host}/r`, DIGEST)).toMatchObject({ size: 3 });
    await client.close();
    expect(seen.accepted.size).toBe(2);
    expect(seen.refusedAt).toBeDefined();
    expect(seen.requestOn).toBeDefined();
    expect(seen.accepted.get(seen.requestOn!)).toBeLessThan(seen.refusedAt!);
    // the failed handshake is not a request
    expect(client.stats().requests).toBe(1);
  });
});
