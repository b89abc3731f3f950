import { createServer, connect, type Server, type Socket } from "node:net";

/** One HTTP request seen on the client side of the proxy, with the response bytes that followed it. */
export interface RequestRecord {
  /** ms on `performance.now()`'s clock when its request line arrived at the proxy */
  at: number;
  method: string;
  path: string;
  range?: string;
  /** bytes the server sent on this connection until the next request on it */
  responseBytes: number;
  /** when the last of those bytes reached the client (same clock as `at`) */
  doneAt: number;
}

export interface ProxyCounters {
  bytesUp: number;
  bytesDown: number;
  requests: number;
}

export interface DelayProxy {
  port: number;
  host: string;
  counters(): ProxyCounters;
  /** requests since the last `reset()` */
  log(): RequestRecord[];
  reset(): void;
  close(): Promise<void>;
}

const REQUEST_LINE = /^([A-Z]+) (\S+) HTTP\/1\.[01]$/;

/**
 * Follows HTTP/1.1 requests on one client connection (heads, then Content-Length bodies) so that
 * each request is counted once however the stream is split into chunks. Chunked request bodies are
 * not followed (registry pulls send none); after one the parser stops counting on that connection.
 */
export class RequestParser {
  private buf: Buffer = Buffer.alloc(0);
  private bodyLeft = 0;
  private lost = false;
  constructor(private readonly onRequest: (method: string, path: string, headers: Map<string, string>) => void) {}

  push(chunk: Buffer): void {
    if (this.lost) return;
    let data: Buffer = chunk;
    while (data.length) {
      if (this.bodyLeft > 0) {
        const n = Math.min(this.bodyLeft, data.length);
        this.bodyLeft -= n;
        data = data.subarray(n);
        continue;
      }
      this.buf = this.buf.length ? Buffer.concat([this.buf, data]) : data;
      data = Buffer.alloc(0);
      const end = this.buf.indexOf("\r\n\r\n");
      if (end < 0) {
        if (this.buf.length > 64 * 1024) this.lost = true;
        return;
      }
      const head = this.buf.subarray(0, end).toString("latin1").split("\r\n");
      data = this.buf.subarray(end + 4);
      this.buf = Buffer.alloc(0);
      const m = REQUEST_LINE.exec(head[0] ?? "");
      if (!m) {
        this.lost = true;
        return;
      }
      const headers = new Map<string, string>();
      for (const line of head.slice(1)) {
        const i = line.indexOf(":");
        if (i > 0) headers.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
      }
      this.onRequest(m[1]!, m[2]!, headers);
      if (headers.get("transfer-encoding")?.toLowerCase().includes("chunked")) {
        this.lost = true;
        return;
      }
      this.bodyLeft = Number(headers.get("content-length") ?? 0) || 0;
    }
  }
}

/**
 * Forwards `from` to `to`, each chunk `delayMs` after it arrived. Chunks are scheduled at arrival, so
 * the delay adds latency without serialising throughput (timers of equal duration fire in order).
 * A slow reader on the far side pauses the source, as a full TCP window would.
 */
function delayedPipe(from: Socket, to: Socket, delayMs: number, count: (n: number, chunk: Buffer) => void): void {
  let inFlight = 0;
  let ended = false;
  const HIGH = 4 * 1024 * 1024;
  from.on("data", (chunk: Buffer) => {
    count(chunk.length, chunk);
    inFlight += chunk.length;
    if (inFlight + to.writableLength > HIGH) from.pause();
    setTimeout(() => {
      inFlight -= chunk.length;
      if (!to.destroyed) to.write(chunk);
      if (ended && inFlight === 0) to.end();
    }, delayMs);
  });
  to.on("drain", () => {
    if (inFlight + to.writableLength <= HIGH) from.resume();
  });
  from.on("end", () => {
    ended = true;
    if (inFlight === 0) setTimeout(() => to.end(), delayMs);
  });
  from.on("error", () => to.destroy());
  from.on("close", () => {
    if (!ended) setTimeout(() => to.destroy(), delayMs);
  });
}

/**
 * A TCP proxy on loopback in front of the registry that adds half the round-trip time in each
 * direction (the link's `tbf` does the rate) and counts bytes and HTTP requests.
 */
export async function startDelayProxy(opts: { target: { host: string; port: number }; rttMs: number; listenHost?: string }): Promise<DelayProxy> {
  const oneWay = opts.rttMs / 2;
  const c: ProxyCounters = { bytesUp: 0, bytesDown: 0, requests: 0 };
  let log: RequestRecord[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(opts.target.port, opts.target.host);
    sockets.add(client);
    sockets.add(upstream);
    client.on("close", () => sockets.delete(client));
    upstream.on("close", () => sockets.delete(upstream));
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    let current: RequestRecord | undefined;
    const parser = new RequestParser((method, path, headers) => {
      c.requests++;
      current = { at: performance.now(), method, path, range: headers.get("range"), responseBytes: 0, doneAt: 0 };
      log.push(current);
    });
    delayedPipe(client, upstream, oneWay, (n, chunk) => {
      c.bytesUp += n;
      parser.push(chunk);
    });
    delayedPipe(upstream, client, oneWay, (n) => {
      c.bytesDown += n;
      if (current) {
        current.responseBytes += n;
        current.doneAt = performance.now() + oneWay;
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, opts.listenHost ?? "127.0.0.1", () => resolve());
  });
  const addr = server.address();
  if (!addr || typeof addr === "string") throw new Error("proxy has no TCP address");
  return {
    port: addr.port,
    host: `${opts.listenHost ?? "127.0.0.1"}:${addr.port}`,
    counters: () => ({ ...c }),
    log: () => [...log],
    reset() {
      c.bytesUp = 0;
      c.bytesDown = 0;
      c.requests = 0;
      log = [];
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
