// A minimal blob server for the benchmark: GET /v2/<repo>/blobs/<digest> with a single Range, from memory.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

let blob = Buffer.alloc(0);
process.on("message", (m: { blob: string }) => {
  blob = Buffer.from(m.blob, "base64");
  process.send!("ready");
});
const server = createServer((req, res) => {
  const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? "");
  if (!m) return void res.writeHead(200, { "content-length": blob.length }).end(blob);
  const start = Number(m[1]);
  const end = Math.min(Number(m[2]), blob.length - 1);
  res.writeHead(206, { "content-range": `bytes ${start}-${end}/${blob.length}`, "content-length": end - start + 1 });
  res.end(blob.subarray(start, end + 1));
});
server.keepAliveTimeout = 60_000;
server.listen(0, "127.0.0.1", () => process.send!((server.address() as AddressInfo).port));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
