// Worker for the inflate comparison in read-throughput.ts: inflate + sha256 synchronously, off the main thread.
import { createHash } from "node:crypto";
import { parentPort } from "node:worker_threads";
import { gunzipSync } from "node:zlib";

parentPort.on("message", (m) => {
  const out = gunzipSync(m.compressed);
  const digest = createHash("sha256").update(out).digest("hex");
  parentPort.postMessage({ id: m.id, digest, length: out.length });
});
