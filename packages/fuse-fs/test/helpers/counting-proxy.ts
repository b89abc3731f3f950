import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface ProxiedRequest {
  method: string;
  url: string;
  range?: string;
}

/** A transparent HTTP proxy in front of a registry that records every request it forwards. */
export async function countingProxy(target: { port: number }): Promise<{
  host: string;
  requests: ProxiedRequest[];
  blobRequests(digest: string): ProxiedRequest[];
  close(): Promise<void>;
}> {
  const requests: ProxiedRequest[] = [];
  const server: Server = createServer((req, res) => {
    requests.push({ method: req.method ?? "", url: req.url ?? "", ...(req.headers.range ? { range: req.headers.range } : {}) });
    const up = request(
      { host: "127.0.0.1", port: target.port, method: req.method, path: req.url, headers: req.headers },
      (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      },
    );
    up.on("error", () => {
      res.destroy();
    });
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    requests,
    blobRequests: (digest) => requests.filter((r) => r.url.includes(`/blobs/${digest}`)),
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
