/**
 * Many small range reads over one keep-alive pool against a real docker-registry on loopback:
 * RegistryClient.fetchRange next to bare `undici.request` (same Agent settings) in the same run.
 * Rounds alternate between the two so drift on a shared machine hits both alike.
 * With `--fast-server`, a minimal Node range server in a child process stands in for the registry: it
 * answers far faster than Distribution, so the client's own CPU cost shows more sharply.
 *   pnpm --filter @lazypull/registry-client bench [-- READS CONCURRENCY RANGE_BYTES] [--fast-server]
 */
import { fork } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { startRegistry } from "@lazypull/testkit";
import { Agent, request } from "undici";
import { RegistryClient, parseReference } from "../src/index.js";

const args = process.argv.slice(2).filter((a) => a !== "--");
const fast = args.includes("--fast-server");
const [reads = 4000, concurrency = 16, rangeBytes = 4096] = args.filter((a) => !a.startsWith("--")).map(Number);
const ROUNDS = 3;
const BLOB = 16 << 20;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function runRound(read: (offset: number) => Promise<Buffer>, offsets: number[]): Promise<{ ms: number; lat: number[] }> {
  const lat: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < offsets.length) {
        const off = offsets[next++]!;
        const s = performance.now();
        const b = await read(off);
        lat.push(performance.now() - s);
        if (b.length !== rangeBytes) throw new Error(`short read at ${off}`);
      }
    }),
  );
  return { ms: performance.now() - t0, lat };
}

const reg = fast ? await startFastServer() : await startRegistry();
const client = new RegistryClient({ registriesConf: false, authFiles: [] });
const agent = new Agent({ connections: 32, keepAliveTimeout: 30_000, keepAliveMaxTimeout: 600_000 });
try {
  const blob = randomBytes(BLOB);
  const digest = `sha256:${createHash("sha256").update(blob).digest("hex")}`;
  const ref = parseReference(`${reg.host}/bench/blob`);
  if (fast) (reg as FastServer).child.send({ digest, blob: blob.toString("base64") });
  else await client.pushBlob(ref, digest, blob.length, blob);
  if (fast) await once((reg as FastServer).child, "message");
  const url = `${reg.url}/v2/${ref.repository}/blobs/${digest}`;

  const bare = async (offset: number): Promise<Buffer> => {
    const res = await request(url, { dispatcher: agent, headers: { range: `bytes=${offset}-${offset + rangeBytes - 1}` } });
    const b = Buffer.from(await res.body.arrayBuffer());
    if (res.statusCode !== 206) throw new Error(`HTTP ${res.statusCode}`);
    return b;
  };
  const ours = (offset: number) => client.fetchRange(ref, digest, { offset, length: rangeBytes });

  const offsets = Array.from({ length: reads }, () => Math.floor(Math.random() * (BLOB - rangeBytes)));
  // check correctness once, then warm up both paths (JIT, connections)
  if (!(await ours(12345)).equals(blob.subarray(12345, 12345 + rangeBytes))) throw new Error("wrong bytes");
  await runRound(bare, offsets.slice(0, 500));
  await runRound(ours, offsets.slice(0, 500));

  const acc = { bare: { ms: 0, lat: [] as number[] }, client: { ms: 0, lat: [] as number[] } };
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, fn] of [["bare", bare], ["client", ours]] as const) {
      const res = await runRound(fn, offsets);
      acc[name].ms += res.ms;
      acc[name].lat.push(...res.lat);
    }
  }
  const summary = Object.fromEntries(
    Object.entries(acc).map(([name, a]) => {
      const sorted = [...a.lat].sort((x, y) => x - y);
      return [name, { reqPerSec: Math.round((reads * ROUNDS) / (a.ms / 1000)), p50ms: +percentile(sorted, 50).toFixed(3), p99ms: +percentile(sorted, 99).toFixed(3) }];
    }),
  );
  const overheadPct = +((summary.bare!.reqPerSec / summary.client!.reqPerSec - 1) * 100).toFixed(1);
  const st = client.stats();
  console.log(
    JSON.stringify(
      { server: fast ? "node range server (child process)" : "docker-registry (Distribution 2.8)", reads: reads * ROUNDS, concurrency, rangeBytes, ...summary, throughputOverheadPct: overheadPct, clientStats: { requests: st.requests, bytesReceived: st.bytesReceived } },
      null,
      2,
    ),
  );
} finally {
  await client.close();
  await agent.close();
  await reg.stop();
}

interface FastServer {
  host: string;
  url: string;
  child: ReturnType<typeof fork>;
  stop(): Promise<void>;
}

async function startFastServer(): Promise<FastServer> {
  const child = fork(fileURLToPath(new URL("./range-server.ts", import.meta.url)), { execArgv: ["--import", "tsx"] });
  const [port] = (await once(child, "message")) as [number];
  return {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    child,
    async stop() {
      child.kill();
      await once(child, "exit");
    },
  };
}
