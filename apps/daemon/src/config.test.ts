import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "./config.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "lazypulld-config-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const env = { LAZYPULL_CACHE_DIR: "/var/cache/lp" };

describe("loadConfig", () => {
  it("should merge the file under the flags, with sizes parsed and defaults filled in", async () => {
    const file = join(dir, "a.json");
    await writeFile(
      file,
      JSON.stringify({ socket: "/run/x/file.sock", root: "/srv/lp", cacheMaxSize: "2GiB", prefetch: "landmark", insecureRegistries: ["reg.lan:5000"], logLevel: "debug" }),
    );
    const cfg = await loadConfig(["--config", file, "--socket", "/run/y/flag.sock", "--insecure-registry", "other:5000", "--prefetch", "none"], env);
    expect(cfg).toEqual({
      socket: "/run/y/flag.sock",
      root: "/srv/lp",
      cacheDir: "/var/cache/lp",
      cacheMaxBytes: 2 * 2 ** 30,
      cacheMemoryBytes: 32 * 2 ** 20,
      prefetch: "none",
      insecureRegistries: ["reg.lan:5000", "other:5000"],
      allowUnverified: false,
      opTimeoutMs: 120_000,
      leaseCheckIntervalMs: 2000,
      store: "/var/lib/lazypull/store",
      storeIdleMs: 300_000,
      logLevel: "debug",
    });
  });

  it("should serve podman's layer store at --store, from the file, or not at all with --no-store", async () => {
    const file = join(dir, "store.json");
    await writeFile(file, JSON.stringify({ store: "/srv/store", storeIdleMs: 1000, backgroundSilenceMs: 0 }));
    expect(await loadConfig(["--config", file], env)).toMatchObject({ store: "/srv/store", storeIdleMs: 1000, backgroundSilenceMs: 0 });
    expect((await loadConfig(["--config", file, "--store", "/x/y"], env))?.store).toBe("/x/y");
    expect((await loadConfig(["--config", file, "--no-store"], env))?.store).toBe(false);
    await writeFile(file, JSON.stringify({ store: false }));
    expect((await loadConfig(["--config", file], env))?.store).toBe(false);
  });

  it("should take the socket from LAZYPULL_SOCKET when neither file nor flag names one", async () => {
    const cfg = await loadConfig(["--config", join(dir, "a.json").replace("a.json", "none.json")], env).catch((e: Error) => e);
    expect(cfg).toMatchObject({ code: "DAEMON_BAD_CONFIG" });
    const ok = await loadConfig([], { ...env, LAZYPULL_SOCKET: "/tmp/s/d.sock", LAZYPULL_DAEMON_CONFIG: "" });
    expect(ok?.socket).toBe("/tmp/s/d.sock");
  });

  it("should reject a bad config file with a message naming the key", async () => {
    const file = join(dir, "bad.json");
    await writeFile(file, JSON.stringify({ prefetch: "sometimes", colour: "blue" }));
    await expect(loadConfig(["--config", file], env)).rejects.toMatchObject({
      code: "DAEMON_BAD_CONFIG",
      message: `config ${file}: config must NOT have additional properties, config/prefetch must be equal to one of the allowed values`,
    });
  });

  it("should reject an unknown flag and a bad size", async () => {
    await expect(loadConfig(["--frobnicate"], env)).rejects.toMatchObject({ code: "DAEMON_BAD_CONFIG" });
    await expect(loadConfig(["--cache-max-size", "lots"], env)).rejects.toMatchObject({
      code: "DAEMON_BAD_CONFIG",
      message: 'cacheMaxSize: not a size: "lots" (expected e.g. 512, 1MB, 10GiB)',
    });
  });
});
