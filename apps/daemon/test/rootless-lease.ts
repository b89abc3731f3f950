// Run by test/rootless.test.ts as the test user inside `podman unshare`, as the rootless CLI runs: takes
// a lease from the user's lazypulld on the socket daemon-client finds by itself, prints the socket and
// the sha256 of each asked file (layer index:path, bottom layer 0) read through the lease, releases it.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { acquireImageLayersFromDaemon, daemonSocketPath } from "@lazypull/daemon-client";

const [reference, ...files] = process.argv.slice(2);
const lease = await acquireImageLayersFromDaemon(reference!);
try {
  const out: Record<string, string> = { socket: daemonSocketPath() };
  const n = lease.lowerDirs.length;
  for (const f of files) {
    const [layer, path] = f.split(":") as [string, string];
    out[f] = createHash("sha256")
      .update(await readFile(join(lease.lowerDirs[n - 1 - Number(layer)]!, path)))
      .digest("hex");
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
} finally {
  await lease.release();
}
