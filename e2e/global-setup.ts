import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { debianRootfsTar, importImage, startRegistry } from "@lazypull/testkit";
import { lazypull } from "./helpers.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** host:port of the suite's docker-registry */
    registryHost: string;
    /** its storage directory: other registries (TLS, auth, an origin behind a mirror) can serve the same images */
    registryStorage: string;
    /** the source image (gzip layers, as `podman push` makes them) */
    sourceRef: string;
    /** the same image converted to eStargz by `lazypull convert` */
    lazyRef: string;
    /**
     * the environment that convert ran with: a later `lazypull convert` with it reuses the layers
     * already converted (the Debian base) instead of converting them again
     */
    convertEnv: Record<string, string>;
  }
}

/**
 * Once per e2e run (every e2e file reads the same image): a real docker-registry, the Debian bookworm
 * rootfs imported as an ordinary gzip image, and `lazypull convert` of it. `E2E_SOURCE_IMAGE` swaps
 * the imported image for any reachable one (e.g. docker.io/library/fedora where docker.io is reachable).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const work = await mkdtemp(join(tmpdir(), "lazypull-e2e-setup-"));
  const registry = await startRegistry();
  try {
    const sourceRef =
      process.env.E2E_SOURCE_IMAGE ??
      (await importImage({ registryHost: registry.host, repository: "library/debian", tag: "bookworm", layers: [{ tar: await debianRootfsTar() }] })).ref;
    const lazyRef = `${registry.host}/lazy/debian:bookworm-esgz`;
    const env = { LAZYPULL_STATE_DIR: join(work, "state"), LAZYPULL_CACHE_DIR: join(work, "cache") };
    const res = await lazypull(["convert", sourceRef, lazyRef, "--json"], { env, timeoutMs: 600_000 });
    const digest = (JSON.parse(res.stdout) as { digest?: unknown }).digest;
    if (typeof digest !== "string" || !/^sha256:[0-9a-f]{64}$/.test(digest)) throw new Error(`lazypull convert --json printed no digest: ${res.stdout}`);
    project.provide("registryHost", registry.host);
    project.provide("registryStorage", registry.storageDir);
    project.provide("sourceRef", sourceRef);
    project.provide("lazyRef", lazyRef);
    project.provide("convertEnv", env);
  } catch (err) {
    await registry.stop();
    await rm(work, { recursive: true, force: true });
    throw err;
  }
  return async () => {
    await registry.stop();
    await rm(work, { recursive: true, force: true });
  };
}
