import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultsFor, loadConfig, type DaemonConfig } from "./config.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "lazypulld-config-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const env = { LAZYPULL_CACHE_DIR: "/var/cache/lp" };

/** a config, not a `--help`/`--version` answer */
async function load(...args: Parameters<typeof loadConfig>): Promise<DaemonConfig> {
  const c = await loadConfig(...args);
  if (typeof c === "string") throw new Error(`loadConfig answered ${c}`);
  return c;
}

describe("loadConfig", () => {
  it("answers --help/-h and --version/-V instead of building a config", async () => {
    expect(await loadConfig(["--help"], {})).toBe("help");
    expect(await loadConfig(["-h"], {})).toBe("help");
    expect(await loadConfig(["--version"], {})).toBe("version");
    expect(await loadConfig(["-V"], {})).toBe("version");
  });

  it("should merge the file under the flags, with sizes parsed and defaults filled in", async () => {
    const file = join(dir, "a.json");
    await writeFile(
      file,
      JSON.stringify({ socket: "/run/x/file.sock", root: "/srv/lp", cacheMaxSize: "2GiB", prefetch: "landmark", insecureRegistries: ["reg.lan:5000"], logLevel: "debug" }),
    );
    const cfg = await load(["--config", file, "--socket", "/run/y/flag.sock", "--insecure-registry", "other:5000", "--prefetch", "none"], env);
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
    expect(await load(["--config", file], env)).toMatchObject({ store: "/srv/store", storeIdleMs: 1000, backgroundSilenceMs: 0 });
    expect((await load(["--config", file, "--store", "/x/y"], env))?.store).toBe("/x/y");
    expect((await load(["--config", file, "--no-store"], env))?.store).toBe(false);
    await writeFile(file, JSON.stringify({ store: false }));
    expect((await load(["--config", file], env))?.store).toBe(false);
  });

  it("should take the socket from LAZYPULL_SOCKET when neither file nor flag names one", async () => {
    const cfg = await load(["--config", join(dir, "a.json").replace("a.json", "none.json")], env).catch((e: Error) => e);
    expect(cfg).toMatchObject({ code: "DAEMON_BAD_CONFIG" });
    const ok = await load([], { ...env, LAZYPULL_SOCKET: "/tmp/s/d.sock", LAZYPULL_DAEMON_CONFIG: "" });
    expect(ok?.socket).toBe("/tmp/s/d.sock");
  });

  it("should reject a bad config file with a message naming the key", async () => {
    const file = join(dir, "bad.json");
    await writeFile(file, JSON.stringify({ prefetch: "sometimes", colour: "blue" }));
    await expect(load(["--config", file], env)).rejects.toMatchObject({
      code: "DAEMON_BAD_CONFIG",
      message: `config ${file}: config must NOT have additional properties, config/prefetch must be equal to one of the allowed values`,
    });
  });

  it("should reject an unknown flag and a bad size", async () => {
    await expect(load(["--frobnicate"], env)).rejects.toMatchObject({ code: "DAEMON_BAD_CONFIG" });
    await expect(load(["--cache-max-size", "lots"], env)).rejects.toMatchObject({
      code: "DAEMON_BAD_CONFIG",
      message: 'cacheMaxSize: not a size: "lots" (expected e.g. 512, 1MB, 10GiB)',
    });
  });

  it("should default to the user's directories for a rootless user, outside and inside podman unshare alike", async () => {
    const home = join(dir, "home");
    const user = { HOME: home, XDG_RUNTIME_DIR: "/run/user/1001", LAZYPULL_DAEMON_CONFIG: "" };
    const inside = { ...user, _CONTAINERS_ROOTLESS_UID: "1001", _CONTAINERS_ROOTLESS_GID: "1001", _CONTAINERS_USERNS_CONFIGURED: "done" };
    const want = {
      socket: "/run/user/1001/lazypull/lazypulld.sock",
      root: `${home}/.local/share/lazypull/daemon`,
      store: `${home}/.local/share/lazypull/store`,
      cacheDir: `${home}/.cache/lazypull`,
    };
    expect(await load([], user, 1001)).toMatchObject(want);
    expect(await load([], inside, 0)).toMatchObject(want);
    expect(await load(["--root", "/srv/r", "--no-store"], inside, 0)).toMatchObject({ root: "/srv/r", store: false });
    const xdg = { ...user, XDG_DATA_HOME: "/d", XDG_CACHE_HOME: "/c", XDG_CONFIG_HOME: "/cf" };
    expect(defaultsFor(xdg, 1001)).toEqual({
      socket: "/run/user/1001/lazypull/lazypulld.sock",
      root: "/d/lazypull/daemon",
      store: "/d/lazypull/store",
      cacheDir: "/c/lazypull",
      configFile: "/cf/lazypull/lazypulld.json",
    });
    // root keeps the system paths, whatever its environment says
    expect(defaultsFor({ HOME: "/root", XDG_RUNTIME_DIR: "/run/user/0" }, 0)).toEqual({
      socket: "/run/lazypull/lazypulld.sock",
      root: "/var/lib/lazypull/daemon",
      store: "/var/lib/lazypull/store",
      cacheDir: "/var/cache/lazypull",
      configFile: "/etc/lazypull/lazypulld.json",
    });
  });

  it("should read a rootless user's own config file, and leave registries.conf to registry-client's default (the user's own first, as podman)", async () => {
    const home = join(dir, "home2");
    await mkdir(join(home, ".config", "lazypull"), { recursive: true });
    await writeFile(join(home, ".config", "lazypull", "lazypulld.json"), JSON.stringify({ prefetch: "none" }));
    const user = { HOME: home, XDG_RUNTIME_DIR: "/run/user/1001" };
    const cfg = await load([], user, 1001);
    expect(cfg).toMatchObject({ prefetch: "none" });
    expect(cfg?.registriesConf).toBeUndefined();
  });

  it("should refuse a rootless start without XDG_RUNTIME_DIR unless a socket is named", async () => {
    const home = join(dir, "home3");
    await expect(load([], { HOME: home }, 1001)).rejects.toMatchObject({ code: "DAEMON_BAD_CONFIG", context: { env: "XDG_RUNTIME_DIR" } });
    expect((await load(["--socket", "/tmp/x/d.sock"], { HOME: home }, 1001))?.socket).toBe("/tmp/x/d.sock");
    expect((await load([], { HOME: home, LAZYPULL_SOCKET: "/tmp/y/d.sock" }, 1001))?.socket).toBe("/tmp/y/d.sock");
  });
});
