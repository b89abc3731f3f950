import { connect, type Socket } from "node:net";

/** how long a spare connection nobody took stays open */
const SPARE_TTL_MS = 10_000;

/**
 * Plain-TCP connections opened ahead, for a registry that may turn out to speak plain HTTP (a loopback
 * or `insecure` one): the transport tries HTTPS first, and the TCP handshake of the plain-HTTP attempt
 * that may follow then runs during the failing TLS one instead of after it — one round trip less on the
 * first request to such a host. The connector hands a spare out for the next plain-HTTP connection to
 * that host:port; one nobody takes is closed after 10 s. Nothing is written on it until undici owns it.
 */
export class PlainSpares {
  readonly #spares = new Map<string, { socket: Socket; timer: NodeJS.Timeout }>();

  /** `hostPort` as in a reference: `host`, `host:port`, `[v6]:port` (port 80 when none, as for http://) */
  open(hostPort: string): void {
    const target = parseHostPort(hostPort);
    if (!target) return;
    const key = `${target.host}:${target.port}`;
    if (this.#spares.has(key)) return;
    const socket = connect({ host: target.host, port: target.port });
    socket.setNoDelay(true);
    // a refused or reset spare is simply not there when asked for
    socket.on("error", () => this.#drop(key, socket));
    socket.on("close", () => this.#drop(key, socket));
    const timer = setTimeout(() => this.#drop(key, socket), SPARE_TTL_MS);
    timer.unref();
    socket.unref();
    this.#spares.set(key, { socket, timer });
  }

  /** A spare for `hostname`:`port` (as undici's connector names them), connected or connecting; at most once. */
  take(hostname: string, port: number): Socket | undefined {
    // undici names an IPv6 host in brackets, as URLs do
    const key = `${hostname.replace(/^\[(.*)\]$/, "$1")}:${port}`;
    const spare = this.#spares.get(key);
    if (!spare) return undefined;
    this.#spares.delete(key);
    clearTimeout(spare.timer);
    spare.socket.removeAllListeners("error");
    spare.socket.removeAllListeners("close");
    if (spare.socket.destroyed) return undefined;
    spare.socket.ref();
    return spare.socket;
  }

  close(): void {
    for (const [key, { socket }] of this.#spares) this.#drop(key, socket);
  }

  #drop(key: string, socket: Socket): void {
    const spare = this.#spares.get(key);
    if (spare?.socket !== socket) return;
    this.#spares.delete(key);
    clearTimeout(spare.timer);
    socket.destroy();
  }
}

function parseHostPort(hostPort: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:]+))(?::(\d+))?$/.exec(hostPort);
  if (!m) return undefined;
  const port = m[3] === undefined ? 80 : Number(m[3]);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) return undefined;
  return { host: (m[1] ?? m[2])!, port };
}
