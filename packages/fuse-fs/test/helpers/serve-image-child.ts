// Serves every layer of an image on a lazy mount in its own process, so that a test can measure this
// process's peak memory while another process reads the files. Prints the layer dirs as one JSON line.
import { openBlobCache } from "@lazypull/blob-cache";
import { RegistryClient, parseReference } from "@lazypull/registry-client";
import { mountLazyFs, unmountOnSignals } from "../../src/index.js";

const [mountpoint, cacheDir, refString] = process.argv.slice(2) as [string, string, string];
const cache = await openBlobCache({ dir: cacheDir });
const client = new RegistryClient();
const fs = await mountLazyFs({ mountpoint, source: client, cache, prefetch: "none" });
unmountOnSignals([fs, cache, client]);
const { ref, manifest } = await client.resolve(parseReference(refString));
const dirs = await Promise.all(manifest.layers.map((descriptor) => fs.addLayer({ ref, descriptor }).then((d) => d.dir)));
process.stdout.write(`${JSON.stringify(dirs)}\n`);
setInterval(() => undefined, 60_000);
