import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadHostConfig, resolveHostConfig } from "./config.js";
import { defaultStateRoot } from "./defaults.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "lazypull-config-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const write = async (name: string, text: string): Promise<string> => {
  const p = join(dir, name);
  await writeFile(p, text);
  return p;
};

const DEFAULT = {
  podman: { binary: "podman", runtime: "runc", globalArgs: [], runArgs: [], network: "host", stopTimeoutMs: 10_000 },
  ulimits: { nofile: { soft: 4096, hard: 4096 }, nproc: { soft: 4096, hard: 4096 } },
  overlay: "auto",
  kernelOverlay: { options: [] },
  fuseOverlayfs: { binary: "fuse-overlayfs", options: ["static_nlink"], mountTimeoutMs: 10_000 },
  fusermount: ["fusermount3", "fusermount"],
};

describe("host config", () => {
  it("should take the overlay kind and kernel options, and name a bad kind or an option lazypull owns", async () => {
    const ok = await write("overlay.json", JSON.stringify({ overlay: "kernel", kernelOverlay: { options: ["volatile"] } }));
    const cfg = await loadHostConfig({ env: { LAZYPULL_CONFIG: ok } });
    expect({ overlay: cfg.overlay, kernelOverlay: cfg.kernelOverlay }).toEqual({ overlay: "kernel", kernelOverlay: { options: ["volatile"] } });
    const bad = await write("overlay-bad.json", JSON.stringify({ overlay: "aufs", kernelOverlay: { options: ["lowerdir=/x"] } }));
    const err = await loadHostConfig({ env: { LAZYPULL_CONFIG: bad } }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "LAUNCH_CONFIG_INVALID" });
    expect((err as { context: { problems: string[] } }).context.problems).toEqual([
      expect.stringMatching(/^overlay: /),
      expect.stringMatching(/^kernelOverlay\.options\.0: one option without ','/),
    ]);
  });

  it("should use the defaults when the default path does not exist", async () => {
    const env = { XDG_RUNTIME_DIR: "/run/user/1000" };
    const cfg = await loadHostConfig({ env });
    // /etc/lazypull/config.json is absent on this host; the state root depends on the uid
    expect(cfg).toEqual({ ...DEFAULT, stateRoot: defaultStateRoot(env), source: null });
  });

  it("should pick the state root by uid: /run for root, XDG_RUNTIME_DIR, else /tmp", () => {
    expect([defaultStateRoot({}, 0), defaultStateRoot({ XDG_RUNTIME_DIR: "/run/user/7" }, 7), defaultStateRoot({}, 7)]).toEqual([
      "/run/lazypull", "/run/user/7/lazypull", "/tmp/lazypull-7",
    ]);
  });

  it("should merge a file from LAZYPULL_CONFIG over the defaults, null dropping a ulimit", async () => {
    const path = await write(
      "ok.json",
      JSON.stringify({ podman: { runtime: "crun", network: null }, ulimits: { nproc: null, core: "0:unlimited" }, stateRoot: "/srv/lp" }),
    );
    expect(await loadHostConfig({ env: { LAZYPULL_CONFIG: path } })).toEqual({
      ...DEFAULT,
      podman: { ...DEFAULT.podman, runtime: "crun", network: null },
      ulimits: { nofile: { soft: 4096, hard: 4096 }, core: { soft: 0, hard: Infinity } },
      stateRoot: "/srv/lp",
      source: path,
    });
  });

  it("should apply overrides last", async () => {
    const path = await write("ov.json", JSON.stringify({ podman: { runtime: "crun" }, stateRoot: "/srv/a" }));
    const cfg = await loadHostConfig({ path, overrides: { podman: { stopTimeoutMs: 500 }, stateRoot: "/srv/b" } });
    expect([cfg.podman.runtime, cfg.podman.stopTimeoutMs, cfg.stateRoot]).toEqual(["crun", 500, "/srv/b"]);
  });

  it("should name every bad key in LAUNCH_CONFIG_INVALID", async () => {
    const path = await write(
      "bad.json",
      JSON.stringify({ podman: { runtme: "runc", stopTimeoutMs: -1 }, ulimits: { nofiles: "1", nproc: "9:1" }, stateRoot: "rel" }),
    );
    const err = await loadHostConfig({ path }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "LAUNCH_CONFIG_INVALID", context: { path } });
    expect((err as { context: { problems: string[] } }).context.problems).toEqual([
      "podman.stopTimeoutMs: Number must be greater than or equal to 0",
      "podman: Unrecognized key(s) in object: 'runtme'",
      "ulimits.nofiles: unknown ulimit (one of core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack)",
      'ulimits.nproc: expected "SOFT:HARD", "N" or "unlimited", with SOFT <= HARD',
      "stateRoot: must be an absolute path",
    ]);
  });

  it("should report invalid JSON and a missing explicit file with their own codes", async () => {
    const path = await write("broken.json", "{ podman: ");
    await expect(loadHostConfig({ path })).rejects.toMatchObject({ code: "LAUNCH_CONFIG_INVALID", context: { path } });
    const missing = join(dir, "missing.json");
    await expect(loadHostConfig({ env: { LAZYPULL_CONFIG: missing } })).rejects.toMatchObject({ code: "LAUNCH_CONFIG_UNREADABLE", context: { path: missing } });
  });

  it("should give fresh arrays so one caller's changes never leak into the defaults", () => {
    const a = resolveHostConfig({}, { env: {} });
    a.podman.runArgs.push("--x");
    a.fusermount.push("y");
    expect(resolveHostConfig({}, { env: {} }).podman.runArgs).toEqual([]);
    expect(resolveHostConfig({}, { env: {} }).fusermount).toEqual(["fusermount3", "fusermount"]);
  });
});
