/**
 * Real fuse-overlayfs and real podman over a real Debian bookworm root filesystem (one lower) and
 * a small top lower with a whiteout and an opaque directory.
 */
import type { ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { debianRootfsTar, run, spawnSource } from "@lazypull/testkit";
import type { ImageConfig } from "@lazypull/registry-client";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  cleanupLeftovers,
  createState,
  launchContainer,
  loadHostConfig,
  mountImageRoot,
  unmountImageRoot,
  type HostConfig,
} from "../src/index.js";
import { mountOverlay } from "../src/overlay.js";
import { mountsUnder, readMounts } from "@lazypull/host";

const CHILD = fileURLToPath(new URL("./fixtures/launch-child.ts", import.meta.url));

let root: string;
let debian: string;
let top: string;
let lowerDirs: string[];
/** the same two layers in overlay form: a 0/0 character device whiteout, an opaque xattr */
let overlayLowerDirs: string[];
let host: HostConfig;

const image = (config: ImageConfig["config"] = {}): ImageConfig => ({ config, rootfs: { type: "layers", diff_ids: [] } });

beforeAll(async () => {
  const tar = await debianRootfsTar();
  root = await mkdtemp(join(tmpdir(), "lazypull-launcher-"));
  debian = join(root, "lower-debian");
  top = join(root, "lower-top");
  await mkdir(debian);
  await run("tar", ["-xf", tar, "-C", debian, "--exclude=./dev/*"]);
  // the second layer: adds a file, deletes /etc/issue, and replaces /usr/share/doc wholesale
  await mkdir(join(top, "etc"), { recursive: true });
  await mkdir(join(top, "usr/share/doc"), { recursive: true });
  await writeFile(join(top, "etc/added-by-top"), "top\n");
  await writeFile(join(top, "etc/.wh.issue"), "");
  await writeFile(join(top, "usr/share/doc/.wh..wh..opq"), "");
  await writeFile(join(top, "usr/share/doc/only-this"), "opaque\n");
  lowerDirs = [top, debian];
  const topOverlay = join(root, "lower-top-overlay");
  await mkdir(join(topOverlay, "etc"), { recursive: true });
  await mkdir(join(topOverlay, "usr/share/doc"), { recursive: true });
  await writeFile(join(topOverlay, "etc/added-by-top"), "top\n");
  await run("mknod", [join(topOverlay, "etc/issue"), "c", "0", "0"]);
  await run("python3", ["-c", "import os, sys; os.setxattr(sys.argv[1], 'trusted.overlay.opaque', b'y')", join(topOverlay, "usr/share/doc")]);
  await writeFile(join(topOverlay, "usr/share/doc/only-this"), "opaque\n");
  overlayLowerDirs = [topOverlay, debian];
  host = await loadHostConfig({ overrides: { stateRoot: join(root, "state"), podman: { stopTimeoutMs: 1500 } } });
});

afterEach(async () => {
  // every test leaves no mount behind
  expect((await mountsUnder(root)).map((m) => m.mountPoint)).toEqual([]);
});

afterAll(async () => {
  if (!root) return;
  for (const m of await mountsUnder(root)) await run("fusermount3", ["-u", "-z", m.mountPoint], { allowFail: true });
  await rm(root, { recursive: true, force: true });
});

async function stateDirs(): Promise<string[]> {
  return readdir(join(host.stateRoot, "containers")).catch(() => []);
}

describe("mountOverlay", () => {
  it("should show the merged view with whiteouts and opaque dirs applied, and copy writes up", async () => {
    const stateDir = join(root, "overlay-1");
    const o = await mountOverlay({ lowerDirs, stateDir, host });
    try {
      expect((await readMounts()).filter((m) => m.mountPoint === o.merged).map((m) => m.fsType)).toEqual(["fuse.fuse-overlayfs"]);
      expect(await readFile(join(o.merged, "etc/os-release"), "utf8")).toContain("VERSION_CODENAME=bookworm");
      expect(await readFile(join(o.merged, "etc/added-by-top"), "utf8")).toBe("top\n");
      expect(existsSync(join(debian, "etc/issue"))).toBe(true);
      expect(existsSync(join(o.merged, "etc/issue"))).toBe(false);
      expect((await readdir(join(o.merged, "etc"))).filter((n) => n.startsWith(".wh."))).toEqual([]);
      expect(await readdir(join(o.merged, "usr/share/doc"))).toEqual(["only-this"]);
      await writeFile(join(o.merged, "etc/hostname"), "changed\n");
      expect(await readFile(join(o.upper, "etc/hostname"), "utf8")).toBe("changed\n");
      expect(await readFile(join(debian, "etc/hostname"), "utf8")).not.toBe("changed\n");
    } finally {
      expect(await o.unmount()).toEqual({ path: o.merged, wasMounted: true, via: "fusermount3 -u" });
    }
    expect(await o.unmount()).toEqual({ path: o.merged, wasMounted: false });
    await rm(stateDir, { recursive: true });
  });

  it("should mount kernel overlayfs when given overlay-form lowers, with the same merged view", async () => {
    const stateDir = join(root, "overlay-kernel");
    const o = await mountOverlay({ lowerDirs, overlayLowerDirs, stateDir, host });
    try {
      expect(o.kind).toBe("kernel");
      expect((await readMounts()).filter((m) => m.mountPoint === o.merged).map((m) => m.fsType)).toEqual(["overlay"]);
      expect(await readFile(join(o.merged, "etc/added-by-top"), "utf8")).toBe("top\n");
      expect(existsSync(join(o.merged, "etc/issue"))).toBe(false);
      expect(await readdir(join(o.merged, "usr/share/doc"))).toEqual(["only-this"]);
      await writeFile(join(o.merged, "etc/hostname"), "changed\n");
      expect(await readFile(join(o.upper, "etc/hostname"), "utf8")).toBe("changed\n");
    } finally {
      expect(await o.unmount()).toEqual({ path: o.merged, wasMounted: true, via: "umount" });
    }
    await rm(stateDir, { recursive: true });
  });

  it("should fall back to fuse-overlayfs under auto when the kernel refuses the mount, and fail under kernel", async () => {
    const refused = { ...host, kernelOverlay: { options: ["no_such_option"] } };
    const o = await mountOverlay({ lowerDirs, overlayLowerDirs, stateDir: join(root, "overlay-fallback"), host: refused });
    try {
      expect(o.kind).toBe("fuse-overlayfs");
      expect(o.fallbackReason).toMatch(/kernel overlayfs mount on .* failed/);
      expect(existsSync(join(o.merged, "etc/issue"))).toBe(false);
    } finally {
      await o.unmount();
    }
    await expect(mountOverlay({ lowerDirs, overlayLowerDirs, stateDir: join(root, "overlay-strict"), host: { ...refused, overlay: "kernel" } })).rejects.toMatchObject({
      code: "OVERLAY_MOUNT_FAILED",
    });
    await expect(mountOverlay({ lowerDirs, stateDir: join(root, "overlay-strict2"), host: { ...host, overlay: "kernel" } })).rejects.toMatchObject({
      code: "OVERLAY_KERNEL_UNAVAILABLE",
    });
    const forced = await mountOverlay({ lowerDirs, overlayLowerDirs, stateDir: join(root, "overlay-forced"), host: { ...host, overlay: "fuse-overlayfs" } });
    expect([forced.kind, forced.fallbackReason]).toEqual(["fuse-overlayfs", undefined]);
    await forced.unmount();
  });

  it("should refuse a missing lower, no lower, and a path fuse-overlayfs cannot parse", async () => {
    await expect(mountOverlay({ lowerDirs: [join(root, "nope")], stateDir: join(root, "o2"), host })).rejects.toMatchObject({
      code: "OVERLAY_NO_LOWER",
      context: { path: join(root, "nope") },
    });
    await expect(mountOverlay({ lowerDirs: [], stateDir: join(root, "o2"), host })).rejects.toMatchObject({ code: "OVERLAY_NO_LOWER" });
    await expect(mountOverlay({ lowerDirs: [debian], stateDir: join(root, "o:2"), host })).rejects.toMatchObject({ code: "OVERLAY_BAD_PATH" });
  });
});

describe("launchContainer", () => {
  it("should run cat /etc/os-release in podman on the merged root and remove everything after", async () => {
    const res = await launchContainer({ host, lowerDirs, image: image({ Cmd: ["cat", "/etc/os-release"] }), run: { rm: true }, stdio: "capture" });
    expect(res.stdout).toContain('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"');
    expect([res.exitCode, res.killed, res.cleanup?.removed, res.cleanup?.errors]).toEqual([0, false, true, []]);
    expect(res.cleanup?.unmounted).toEqual([join(res.stateDir, "merged")]);
    expect(existsSync(res.stateDir)).toBe(false);
    expect(await stateDirs()).toEqual([]);
  });

  it("should apply the image's Env, WorkingDir and User, with -e overrides", async () => {
    const res = await launchContainer({
      host,
      lowerDirs,
      image: image({ Env: ["PATH=/usr/bin:/bin", "A=image", "B=image"], WorkingDir: "/usr/share", User: "65534:65534", Cmd: ["false"] }),
      run: { rm: true, env: ["B=cli", "FROM_HOST"], args: ["sh", "-c", 'echo "$A $B $FROM_HOST"; pwd; id -u; id -g'] },
      hostEnv: { FROM_HOST: "hosty" },
      stdio: "capture",
    });
    expect([res.exitCode, res.stdout]).toEqual([0, "image cli hosty\n/usr/share\n65534\n65534\n"]);
  });

  it("should copy a shell's writes up (lower untouched), see the top layer's deletions, and keep the upper with keep", async () => {
    const res = await launchContainer({
      host,
      lowerDirs,
      image: image({ Entrypoint: ["/bin/sh", "-c"] }),
      run: { rm: true, args: ["echo hello > /etc/motd && cat /etc/motd && ls /usr/share/doc && test ! -e /etc/issue"] },
      keep: true,
      stdio: "capture",
    });
    expect([res.exitCode, res.stdout]).toEqual([0, "hello\nonly-this\n"]);
    expect(await readFile(join(res.stateDir, "upper/etc/motd"), "utf8")).toBe("hello\n");
    expect(await readFile(join(debian, "etc/motd"), "utf8")).not.toContain("hello");
    expect(JSON.parse(await readFile(join(res.stateDir, "state.json"), "utf8"))).toMatchObject({ kind: "container", kept: true, ownerPid: process.pid });
    // a kept dir is not a leftover
    expect(await cleanupLeftovers(host)).toEqual([]);
    await rm(res.stateDir, { recursive: true });
  });

  it("should return a non-zero exit code of the container", async () => {
    const res = await launchContainer({ host, lowerDirs, image: image(), run: { rm: true, args: ["sh", "-c", "exit 42"] }, stdio: "capture" });
    expect([res.exitCode, res.cleanup?.removed]).toEqual([42, true]);
  });

  it("should clean up and rethrow when the container cannot start", async () => {
    await expect(launchContainer({ host, lowerDirs, image: image(), run: { rm: true }, stdio: "capture" })).rejects.toMatchObject({ code: "LAUNCH_NO_COMMAND" });
    expect(await stateDirs()).toEqual([]);
  });
});

interface Child {
  child: ChildProcess;
  ready: Promise<void>;
  stderr: () => string;
  /** all its output read too (podman, a grandchild, shares the pipes) */
  closed: Promise<number | null>;
  /** the process itself is gone */
  exited: Promise<number | null>;
}

function startChild(args: string[], opts: { kernel?: boolean } = {}): Child {
  const input = { stateRoot: host.stateRoot, lowerDirs, ...(opts.kernel ? { overlayLowerDirs } : {}), args, stopTimeoutMs: 1500 };
  const child = spawnSource(CHILD, [JSON.stringify(input)], { stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  child.stderr!.on("data", (b: Buffer) => (err += b.toString()));
  const ready = new Promise<void>((resolve, reject) => {
    // podman installs its signal proxy just after the container starts: a signal sent earlier
    // makes podman exit and leave the container (runContainer then kills it; 137, not forwarded)
    child.stdout!.on("data", (b: Buffer) => b.toString().includes("ready") && setTimeout(resolve, 500));
    child.on("exit", () => reject(new Error(`child exited before the container was ready: ${err}`)));
  });
  const closed = new Promise<number | null>((r) => child.on("close", (code) => r(code)));
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  return { child, ready, stderr: () => err, closed, exited };
}

const result = (stderr: string): { exitCode: number; cleanup: { id: string } } =>
  JSON.parse(stderr.split("\n").find((l) => l.startsWith("RESULT "))!.slice(7));

async function containerExists(name: string): Promise<boolean> {
  return (await run(host.podman.binary, ["container", "exists", name], { allowFail: true })).code === 0;
}

describe("signals and leftovers", () => {
  it("should forward SIGINT to the container, exit with its code, and clean up", async () => {
    const c = startChild(["sh", "-c", "trap 'exit 7' INT; echo ready; while :; do sleep 0.1; done"]);
    await c.ready;
    c.child.kill("SIGINT");
    expect({ code: await c.closed, stderr: c.stderr() }).toMatchObject({ code: 7 });
    expect(result(c.stderr())).toMatchObject({ exitCode: 7, signal: "SIGINT", killed: false, cleanup: { removed: true, errors: [] } });
    expect(await containerExists(`lazypull-${result(c.stderr()).cleanup.id}`)).toBe(false);
    expect(await stateDirs()).toEqual([]);
  });

  it("should kill a container that ignores SIGTERM after the stop timeout, and clean up", async () => {
    const c = startChild(["sh", "-c", "trap '' TERM INT; echo ready; while :; do sleep 0.1; done"]);
    await c.ready;
    const t0 = Date.now();
    c.child.kill("SIGTERM");
    // the child's stderr in the message, should it fail
    expect(`exit ${await c.closed}\n${c.stderr()}`).toMatch(/^exit 137\n/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1400);
    expect(result(c.stderr())).toMatchObject({ exitCode: 137, signal: "SIGTERM", killed: true, cleanup: { removed: true } });
    expect(await containerExists(`lazypull-${result(c.stderr()).cleanup.id}`)).toBe(false);
    expect(await stateDirs()).toEqual([]);
  });

  it.each(["fuse-overlayfs", "overlay"])("should find a SIGKILLed launcher's container, %s mount and state dir and remove them", async (fsType) => {
    const c = startChild(["sh", "-c", "echo ready; sleep 60"], { kernel: fsType === "overlay" });
    await c.ready;
    const [id] = await stateDirs();
    const stateDir = join(host.stateRoot, "containers", id!);
    c.child.kill("SIGKILL");
    await c.exited;
    expect((await mountsUnder(stateDir)).map((m) => m.fsType)).toEqual([fsType === "overlay" ? "overlay" : "fuse.fuse-overlayfs"]);
    expect(await cleanupLeftovers(host)).toEqual([
      { id, kind: "container", dir: stateDir, ownerPid: c.child.pid, unmounted: [join(stateDir, "merged")], containerRemoved: true, removed: true, errors: [] },
    ]);
    expect(await stateDirs()).toEqual([]);
    expect(await containerExists(`lazypull-${id}`)).toBe(false);
  });
});

describe("mountImageRoot / unmountImageRoot", () => {
  it("should mount the merged root at a directory, refuse a second mount there, and tear it all down by directory", async () => {
    const target = join(root, "rootfs-target");
    const state = await createState(host, { target });
    // what the CLI does with its lazy FUSE mount: record it, then mount; here a plain fuse-overlayfs stands in
    const fuseDir = join(state.dir, "layers");
    await state.recordMount(fuseDir, "fuse");
    const inner = await mountOverlay({ lowerDirs: [debian], stateDir: join(state.dir, "inner"), merged: fuseDir, host });
    const m = await mountImageRoot({ host, lowerDirs: [top, inner.merged], target, state });
    expect(await readdir(join(target, "usr/share/doc"))).toEqual(["only-this"]);
    expect(await readFile(join(target, "etc/os-release"), "utf8")).toContain("bookworm");
    await expect(mountImageRoot({ host, lowerDirs, target })).rejects.toMatchObject({ code: "OVERLAY_TARGET_BUSY", context: { path: target } });

    const report = await unmountImageRoot({ host, target, signalOwner: false });
    expect(report).toEqual({
      id: m.state.record.id,
      kind: "mount",
      dir: m.state.dir,
      ownerPid: process.pid,
      unmounted: [target, fuseDir],
      containerRemoved: false,
      removed: true,
      errors: [],
    });
    expect(existsSync(m.state.dir)).toBe(false);
    await expect(unmountImageRoot({ host, target })).rejects.toMatchObject({ code: "OVERLAY_NOT_MOUNTED" });
  });
});
