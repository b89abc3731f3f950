// lazypulld as an ordinary user, on real parts: a user with subordinate ids (made as a host admin
// would, by testkit), a fresh home and runtime dir per run, rootless podman with the overlay driver and
// lazypulld's store in its storage.conf. The user starts lazypulld; it runs itself inside podman's
// namespaces. Checked: the user's default paths, a lease taken inside `podman unshare` (as the rootless
// CLI does), rootless podman pulling through the store lazily, and nothing left mounted or running in
// either namespace after SIGTERM or SIGKILL of the process the user started.
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DaemonClient, type Health } from "@lazypull/daemon-client";
import { isProcessAlive } from "@lazypull/host";
import {
  REPO_ROOT,
  ensureTestUser,
  openHostToUsers,
  restoreHostModes,
  run,
  sourceArgs,
  startRegistry,
  userEnv,
  type RegistryProcess,
  type RunResult,
  type TestUser,
} from "@lazypull/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildSmallImage, type SmallImage } from "./helpers.js";

const USER = "lazypull-rootless-d";

async function hasPodman(): Promise<boolean> {
  return (await run("podman", ["--version"], { allowFail: true }).catch(() => ({ code: 1 }))).code === 0;
}
const canRun = process.getuid?.() === 0 && (await hasPodman());

interface UserDaemon {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  log(): string;
  /** from inside: its pid is the copy running in podman's namespaces */
  health: Health;
}

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

describe.skipIf(!canRun)("lazypulld started by an ordinary user", () => {
  let work: string;
  let registry: RegistryProcess;
  let image: SmallImage;
  let user: TestUser;
  let socket: string;
  let daemon: UserDaemon | undefined;
  const started: UserDaemon[] = [];

  /** `args` as the user, with its home and runtime dir, from the checkout (where `--import tsx` resolves) */
  const asUser = (args: string[], opts: { allowFail?: boolean } = {}): Promise<RunResult> =>
    run("runuser", ["-u", user.name, "--", "env", `XDG_RUNTIME_DIR=${user.runtimeDir}`, `HOME=${user.home}`, ...args], {
      cwd: REPO_ROOT,
      timeoutMs: 120_000,
      ...opts,
    });

  /** lazypulld's mounts (its state and store dirs) in the host's namespace and in the user's podman namespace */
  async function userMounts(): Promise<{ host: string[]; userns: string[] }> {
    const mine = join(user.home, ".local", "share", "lazypull");
    const pick = (text: string) => text.split("\n").filter((l) => l.includes(mine));
    const inside = await asUser(["podman", "unshare", "cat", "/proc/self/mountinfo"]);
    return { host: pick(await readFile("/proc/self/mountinfo", "utf8")), userns: pick(inside.stdout) };
  }

  async function startUserDaemon(): Promise<UserDaemon> {
    const child = spawn(process.execPath, [...sourceArgs("apps/daemon/src/main.ts"), "--prefetch", "none", "--log-level", "debug"], {
      uid: user.uid,
      gid: user.gid,
      cwd: REPO_ROOT,
      env: userEnv(user),
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once("exit", (code, signal) => r({ code, signal })));
    const client = new DaemonClient({ socketPath: socket, timeoutMs: 2000 });
    try {
      const deadline = Date.now() + 90_000;
      for (;;) {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`lazypulld exited ${child.exitCode ?? child.signalCode}: ${stderr}`);
        const health = await client.health().catch(() => undefined);
        if (health) {
          const d = { child, exited, log: () => stderr, health };
          started.push(d);
          return d;
        }
        if (Date.now() > deadline) throw new Error(`lazypulld did not answer on ${socket} within 90 s: ${stderr}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      await client.close();
    }
  }

  async function waitGone(pid: number, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (isProcessAlive(pid)) {
      if (Date.now() > deadline) return false;
      await new Promise((r) => setTimeout(r, 100));
    }
    return true;
  }

  const layers = async () => {
    const client = new DaemonClient({ socketPath: socket });
    try {
      return await client.layers();
    } finally {
      await client.close();
    }
  };

  beforeAll(async () => {
    const u = await ensureTestUser(USER);
    await openHostToUsers();
    work = await mkdtemp(join(tmpdir(), "lazypull-daemon-rootless-"));
    await chmod(work, 0o755);
    registry = await startRegistry();
    // 3 MB a layer, and only the small files are read: a lazy pull fetches clearly less than a layer
    image = await buildSmallImage(join(work, "image"), registry.host, 6, 1_000_000);
    // a home and runtime dir of its own per run: podman storage, pause process and lazypulld state start empty
    user = { ...u, home: join(work, "home"), runtimeDir: join(work, "run") };
    const store = join(user.home, ".local", "share", "lazypull", "store");
    await mkdir(join(user.home, ".config", "containers"), { recursive: true });
    await mkdir(user.runtimeDir, { mode: 0o700 });
    // what the user writes for podman to look layers up in the store first (overlay: vfs has no such stores)
    await writeFile(join(user.home, ".config", "containers", "storage.conf"), `[storage]\ndriver = "overlay"\n\n[storage.options]\nadditionallayerstores = ["${store}:ref"]\n`);
    await run("chown", ["-R", `${user.uid}:${user.gid}`, user.home, user.runtimeDir]);
    await chmod(user.home, 0o700);
    socket = join(user.runtimeDir, "lazypull", "lazypulld.sock");
  });

  afterAll(async () => {
    for (const d of started) {
      for (const pid of [d.child.pid, d.health.pid]) if (pid !== undefined && isProcessAlive(pid)) process.kill(pid, "SIGKILL");
    }
    // rootless podman's pause process holds the run's namespaces, and with them whatever is still mounted there
    const pause = !user
      ? 0
      : Number((await readFile(join(user.runtimeDir, "libpod", "tmp", "pause.pid"), "utf8").catch(() => "")).trim());
    if (pause > 0 && isProcessAlive(pause)) process.kill(pause, "SIGKILL");
    await registry?.stop();
    await restoreHostModes();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("should run itself inside podman's namespaces, with the user's default paths, and answer on the user's socket", async () => {
    daemon = await startUserDaemon();
    const data = join(user.home, ".local", "share", "lazypull");
    expect(daemon.health).toMatchObject({ status: "ok", fuseMountpoint: join(data, "daemon", "layers"), layerStore: join(data, "store") });
    // the process the user started waits; the daemon is its copy under podman unshare, the user's on the host
    expect(daemon.health.pid).not.toBe(daemon.child.pid);
    const status = await readFile(`/proc/${daemon.health.pid}/status`, "utf8");
    expect(status.match(/^Uid:\s+(\d+)/m)?.[1]).toBe(String(user.uid));
    expect(await readFile(`/proc/${daemon.health.pid}/environ`, "utf8")).toContain("_CONTAINERS_USERNS_CONFIGURED=");
    const mounts = await userMounts();
    expect(mounts.host).toEqual([]);
    expect(mounts.userns.map((l) => l.split(" - ")[1]?.split(" ")[0]).sort()).toEqual(["fuse.lazypull", "fuse.lazypull-store"]);
  });

  it("should serve an image lease to a client inside the user's podman unshare, on the socket daemon-client finds", async () => {
    const res = await asUser(["podman", "unshare", process.execPath, ...sourceArgs("apps/daemon/test/rootless-lease.ts"), image.ref, "0:etc/layer-0", "1:etc/layer-1"]);
    expect(JSON.parse(res.stdout)).toEqual({
      socket,
      "0:etc/layer-0": sha256(image.files[0]!.get("etc/layer-0")!),
      "1:etc/layer-1": sha256(image.files[1]!.get("etc/layer-1")!),
    });
    const client = new DaemonClient({ socketPath: socket });
    try {
      expect(await client.images()).toEqual([]);
    } finally {
      await client.close();
    }
  });

  it("should serve rootless podman's Additional Layer Store lazily: podman pulls no layer and reads through the store", async () => {
    await asUser(["podman", "pull", "--quiet", "--tls-verify=false", image.ref]);
    const info = await asUser(["podman", "info", "--format", "{{.Store.GraphDriverName}}"]);
    expect(info.stdout.trim()).toBe("overlay");
    // rootless podman mounts an image only inside its namespace
    const read = await asUser(["podman", "unshare", "sh", "-c", `m=$(podman image mount ${image.ref}) && cat "$m/etc/layer-1" && podman image unmount ${image.ref} >/dev/null`]);
    expect(read.stdout).toBe("layer 1\n");
    const served = await layers();
    expect(served).toHaveLength(2);
    for (const l of served) {
      expect(l.store?.uses).toBeGreaterThanOrEqual(1);
      expect(l.images).toEqual([]);
      // the big files were never read: a small part of each blob came over the network
      expect(l.bytesFetched).toBeLessThan(l.bytesTotal / 2);
    }
    await asUser(["podman", "rmi", image.ref]);
    expect((await layers()).map((l) => l.store?.uses ?? 0)).toEqual([0, 0]);
  });

  it("should unmount everything in both namespaces and exit 0 on SIGTERM to the process the user started, also sent to both", async () => {
    const d = daemon!;
    d.child.kill("SIGTERM");
    // as `kill %1` or systemd's default KillMode do (the whole group): the copy passed on is not a second request
    process.kill(d.health.pid, "SIGTERM");
    expect(await d.exited).toEqual({ code: 0, signal: null });
    expect(isProcessAlive(d.health.pid)).toBe(false);
    expect(await userMounts()).toEqual({ host: [], userns: [] });
    expect(d.log()).toContain('"msg":"lazypulld stopped"');
    expect(d.log()).not.toMatch(/"level":(40|50)/);
  });

  it("should stop by itself and unmount when the process the user started is SIGKILLed", async () => {
    const d = await startUserDaemon();
    d.child.kill("SIGKILL");
    await d.exited;
    expect(await waitGone(d.health.pid, 15_000)).toBe(true);
    expect(await userMounts()).toEqual({ host: [], userns: [] });
    expect(d.log()).toContain('"signal":"outer process gone"');
  });
});
