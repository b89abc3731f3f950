// A process that serves an (empty) lazy mount until a signal arrives: for the mount hygiene tests.
import { openBlobCache } from "@lazypull/blob-cache";
import { RegistryClient } from "@lazypull/registry-client";
import { mountLazyFs, unmountOnSignals } from "../../src/index.js";

const [mountpoint, cacheDir, mode] = process.argv.slice(2) as [string, string, string];
const cache = await openBlobCache({ dir: cacheDir });
const client = new RegistryClient();
const fs = await mountLazyFs({ mountpoint, source: client, cache, prefetch: "none" });
if (mode === "signals") unmountOnSignals(fs);
process.stdout.write("mounted\n");
setInterval(() => undefined, 60_000);
