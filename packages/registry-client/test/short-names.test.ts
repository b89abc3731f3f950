// Short names against real registries: the search registries of a registries.conf are asked in order and the
// first that has the image wins; an alias goes straight to its target; a name none has says where it looked.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startRegistry, type RegistryProcess } from "@lazypull/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RegistryClient } from "../src/index.js";
import { makeImage, pushImage } from "./helpers.js";

describe("short names through unqualified-search-registries and aliases", () => {
  let empty: RegistryProcess;
  let full: RegistryProcess;
  let dir: string;
  const img = makeImage([1000]);

  beforeAll(async () => {
    [empty, full] = await Promise.all([startRegistry(), startRegistry()]);
    dir = await mkdtemp(join(tmpdir(), "rc-short-"));
    const pusher = new RegistryClient({ registriesConf: false, authFiles: [] });
    await pushImage(pusher, `${full.host}/tools/app:1`, img);
    await pusher.close();
  });
  afterAll(async () => {
    await Promise.all([empty.stop(), full.stop()]);
    await rm(dir, { recursive: true, force: true });
  });

  async function clientWith(conf: string): Promise<RegistryClient> {
    const file = join(dir, `${Math.random().toString(36).slice(2)}.conf`);
    await writeFile(file, conf);
    return new RegistryClient({ registriesConf: file, registriesConfDir: false, authFiles: [] });
  }

  it("should try each search registry in order and take the first that has the image", async () => {
    const client = await clientWith(`unqualified-search-registries = ["${empty.host}", "${full.host}"]\n`);
    try {
      const r = await client.resolve("tools/app:1");
      expect(r.ref.toString()).toBe(`${full.host}/tools/app:1`);
      expect(r.manifestDigest).toBe(img.manifestDigest);
      // the first registry was asked (and had nothing) before the second answered
      expect(Object.keys(client.stats().hosts).sort()).toEqual([empty.host, full.host].sort());
    } finally {
      await client.close();
    }
  });

  it("should follow an alias without asking the search registries", async () => {
    const client = await clientWith(`unqualified-search-registries = ["${empty.host}"]\n[aliases]\n"app" = "${full.host}/tools/app"\n`);
    try {
      const r = await client.resolve("app:1");
      expect(r.ref.toString()).toBe(`${full.host}/tools/app:1`);
      expect(Object.keys(client.stats().hosts)).toEqual([full.host]);
    } finally {
      await client.close();
    }
  });

  it("should say which registries it tried when none has the image", async () => {
    const client = await clientWith(`unqualified-search-registries = ["${empty.host}"]\n`);
    try {
      await expect(client.resolve("tools/app:1")).rejects.toMatchObject({
        code: "REGISTRY_NOT_FOUND",
        message: expect.stringContaining(`${empty.host}/tools/app:1: REGISTRY_NOT_FOUND`),
      });
    } finally {
      await client.close();
    }
  });
});
