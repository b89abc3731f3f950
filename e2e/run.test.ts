import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { debianRootfsTar, importImage, pushLyingTocDigest, run, spawnDaemon } from "@lazypull/testkit";
import { cliArgs, lazypull, mountsUnder, overlayEnv, OVERLAY_KINDS, processesMentioning, repoRoot, spawnLazypull, startLazyMount, waitForStdout } from "./helpers.js";

/**
 * The whole path on real parts: a docker-registry process, a real Debian bookworm root filesystem
 * imported as an ordinary gzip image, `lazypull convert` (both in global-setup.ts), then `lazypull run`
 * through FUSE, an overlay and podman — each run under both overlays, kernel and fuse-overlayfs.
 */
let work: string;
let env: NodeJS.ProcessEnv;
const registryHost = inject("registryHost");
const lazyRef = inject("lazyRef");
let multiRef: string;
const external = process.env.E2E_SOURCE_IMAGE;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "lazypull-e2e-"));
  env = { LAZYPULL_STATE_DIR: join(work, "state"), LAZYPULL_CACHE_DIR: join(work, "cache") };
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

afterEach(async () => {
  // Every run must leave nothing mounted behind.
  expect(await mountsUnder(work)).toEqual([]);
});

describe.each(OVERLAY_KINDS)("lazypull run under %s", (kind) => {
  let env: NodeJS.ProcessEnv;
  beforeAll(() => {
    env = overlayEnv(work, kind);
  });

  it("should print Debian bookworm's os-release from a lazily served image", async () => {
    const res = await lazypull(["run", "--rm", "--stats", lazyRef, "cat", "/etc/os-release"], { env });
    expect(res.stderr).toContain(`overlay: ${kind};`);
    if (!external) {
      expect(res.stdout).toContain('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"');
      expect(res.stdout).toContain("VERSION_CODENAME=bookworm");
    } else {
      expect(res.stdout).toMatch(/^ID=/m);
    }
  });

  it.skipIf(Boolean(external))("should fetch what the start reads before it reads it (predictive prefetch), and not with --no-predict", async () => {
    const res = await lazypull(["run", "--rm", "--stats", lazyRef, "cat", "/etc/os-release"], { env });
    // /etc/passwd, /etc/group, nsswitch.conf, ld.so.cache, cat, its loader and libc (at least)
    const m = /predicted (\d+) files \(([\d.]+) (\w+)\) for the start/.exec(res.stderr);
    expect(m, res.stderr).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThanOrEqual(7);
    expect(m![3]).toBe("MiB"); // libc alone is ~1.9 MiB
    expect(res.stdout).toContain("VERSION_CODENAME=bookworm");
    const off = await lazypull(["run", "--rm", "--stats", "--no-predict", lazyRef, "cat", "/etc/os-release"], { env });
    expect(off.stderr).not.toContain("predicted");
    expect(off.stdout).toContain("VERSION_CODENAME=bookworm");
  });

  it.skipIf(Boolean(external) || kind !== "kernel")("should need one request, the manifest by tag, for a second run right after a cold one", async () => {
    const fresh = { ...env, LAZYPULL_CACHE_DIR: join(work, "cache-second-run") };
    const cmd = ["run", "--rm", "--stats", lazyRef, "sh", "-c", "exit 0", "/usr/bin/bash"];
    const requestsOf = (stats: string) => /fetched .* in (\d+) requests/.exec(stats)?.[1];
    const first = await lazypull(cmd, { env: fresh });
    expect(Number(requestsOf(first.stderr))).toBeGreaterThan(1);
    // config, TOC and every chunk the start read come from the cache: cache hits used to fetch the chunks
    // that follow them in the blob (a read-around meant only for requests made anyway), 6 requests here
    const second = await lazypull(cmd, { env: fresh });
    expect({ code: second.code, requests: requestsOf(second.stderr) }, second.stderr).toEqual({ code: 0, requests: "1" });
  });

  it("should let a shell write and read a file copy-on-write without touching the lower layers", async () => {
    const script = "echo hello-cow > /etc/motd-e2e && cat /etc/motd-e2e && echo changed >> /etc/os-release && tail -n1 /etc/os-release";
    const res = await lazypull(["run", "--rm", lazyRef, "sh", "-c", script], { env });
    expect(res.stdout.split("\n").filter(Boolean)).toEqual(["hello-cow", "changed"]);
    // A second container sees the image as it was: the first one's writes went to its own upper dir.
    const again = await lazypull(["run", "--rm", lazyRef, "sh", "-c", "test ! -e /etc/motd-e2e && tail -n1 /etc/os-release"], { env });
    expect(again.stdout.trim()).not.toBe("changed");
    expect(again.code).toBe(0);
  });

  it.skipIf(Boolean(external))("should list the installed packages with dpkg -l", async () => {
    const res = await lazypull(["run", "--rm", lazyRef, "dpkg", "-l"], { env });
    const pkgs = res.stdout.split("\n").filter((l) => l.startsWith("ii ")).map((l) => (l.split(/\s+/)[1] ?? "").replace(/:.*$/, ""));
    expect(pkgs).toEqual(expect.arrayContaining(["base-files", "bash", "coreutils", "dpkg", "libc6"]));
    expect(pkgs.length).toBeGreaterThan(50);
  });

  it("should propagate the container's exit code", async () => {
    const res = await lazypull(["run", "--rm", lazyRef, "sh", "-c", "exit 42"], { env, allowFail: true });
    expect(res.code).toBe(42);
  });

  it("should give `-it` a terminal: the container sees a pty, reads what is typed, and its exit code comes back", async () => {
    // `script` (util-linux) runs the CLI on a fresh pseudo-terminal, as an interactive shell would
    const cli = [process.execPath, ...cliArgs(["run", "--rm", "-it", lazyRef, "sh", "-c", "tty; read line; echo got:$line; exit 3"])];
    const res = await run("script", ["-qec", cli.map((a) => `'${a}'`).join(" "), "/dev/null"], {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      input: "hello\n",
      allowFail: true,
      timeoutMs: 120_000,
    });
    // anywhere in the output: the terminal echoes what is typed whenever the pty reads it, which can land
    // in the middle of `tty`'s line (seen once in CI); "not a tty" would not match
    const tty = /\/dev\/pts\/\d+/.test(res.stdout);
    expect({ code: res.code, tty, got: res.stdout.includes("got:hello"), ...(tty ? {} : { stdout: res.stdout }) }).toEqual({ code: 3, tty: true, got: true });
  });

  it("should clean up every mount when interrupted with SIGINT", async () => {
    const child = spawnLazypull(["run", "--rm", lazyRef, "sh", "-c", "echo started; sleep 60"], env);
    await waitForStdout(child, "started");
    expect(await mountsUnder(work)).not.toEqual([]);
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    child.kill("SIGINT");
    const code = await exited;
    expect(code).not.toBe(0);
    expect(await mountsUnder(work)).toEqual([]);
  });
});

describe.each(OVERLAY_KINDS)("after lazypull (%s) is killed with SIGKILL", (kind) => {
  let env: NodeJS.ProcessEnv;
  beforeAll(() => {
    env = overlayEnv(work, kind);
  });

  it("should have the next invocation remove the container, mounts and state it left", async () => {
    const child = spawnLazypull(["run", "--rm", "--name", "e2e-killed", lazyRef, "sh", "-c", "echo started; sleep 120"], env);
    await waitForStdout(child, "started");
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGKILL");
    await exited;
    const next = await lazypull(["run", "--rm", lazyRef, "true"], { env });
    expect(next.stderr).toMatch(/cleaned up after dead process \d+/);
    expect(next.stderr).not.toMatch(/errors:/);
    const ps = await run("podman", ["ps", "--all", "--filter", "name=e2e-killed", "--format", "{{.Names}}"]);
    expect(ps.stdout.trim()).toBe("");
    // Nothing of the killed run lives on: its fuse-overlayfs (if any), fusermount and podman processes exit once
    // the container is gone (they used to inherit lazypull's FUSE connection and hang in D state).
    expect(await processesMentioning(join(work, "state"), 20_000)).toEqual([]);
    // afterEach checks that nothing is mounted under the suite's directories any more
  });
});

describe("the bundled bin (apps/cli/dist/lazypull.mjs, what `lazypull` and the bench run)", () => {
  it("should build from the sources and run a container with the native FUSE addon loaded from outside the bundle", async () => {
    await run(process.execPath, [join(repoRoot, "apps/cli/scripts/bundle.mjs")], { timeoutMs: 120_000 });
    const bin = join(repoRoot, "apps/cli/dist/lazypull.mjs");
    // executed, as an installed `lazypull` is: its shebang's node flags apply
    const res = await run(bin, ["run", "--rm", "--stats", lazyRef, "cat", "/etc/os-release"], { env: { ...process.env, ...env, LAZYPULL_CODE_CACHE_REPORT: "1" }, timeoutMs: 240_000 });
    expect(res.stdout).toMatch(/^ID=/m);
    expect(res.stderr).toMatch(/FUSE ops/);
    // the build made its code cache under the shebang's V8 flags: a start that cannot use it is slower
    expect(res.stderr).toContain("lazypull: code cache used");
  });

  it("should print the package version it was built from", async () => {
    const bin = join(repoRoot, "apps/cli/dist/lazypull.mjs");
    const { version } = JSON.parse(await readFile(join(repoRoot, "apps/cli/package.json"), "utf8")) as { version: string };
    expect((await run(bin, ["--version"])).stdout.trim()).toBe(version);
  });
});

describe("an explicitly named daemon that does not answer", () => {
  it("should warn and serve in-process, or refuse with LAZYPULL_REQUIRE_DAEMON=1", async () => {
    const socket = join(work, "nobody", "lazypulld.sock");
    const warned = await lazypull(["run", "--rm", lazyRef, "cat", "/etc/debian_version"], { env: { ...env, LAZYPULL_SOCKET: socket } });
    expect(warned.stdout).toMatch(/^\d+\.\d+/);
    expect(warned.stderr).toContain(`warning: no lazypulld answers on LAZYPULL_SOCKET=${socket}; serving the image in this process`);
    const refused = await lazypull(["run", "--rm", lazyRef, "cat", "/etc/debian_version"], { env: { ...env, LAZYPULL_SOCKET: socket, LAZYPULL_REQUIRE_DAEMON: "1" }, allowFail: true });
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe("");
    expect(refused.stderr).toContain("CLI_DAEMON_UNAVAILABLE");
  });
});

describe("reading an image without running it", () => {
  it("should cat and ls a remote image with range reads only", async () => {
    const cat = await lazypull(["cat", "--stats", lazyRef, "/etc/os-release"], { env });
    expect(cat.stdout).toMatch(/^ID=/m);
    const cost = /(\d+) HTTP requests/.exec(cat.stderr);
    // manifest, config, footer+TOC of the layer, the file's chunk (+ auth probe): far from a whole pull
    expect(Number(cost?.[1])).toBeLessThanOrEqual(6);
    const ls = await lazypull(["ls", lazyRef, "/etc", "--json"], { env });
    const names = (JSON.parse(ls.stdout) as { path: string }[]).map((n) => n.path);
    expect(names).toContain("etc/os-release");
  });

  it("should mount the merged root without a container and unmount it on umount", async () => {
    const target = join(work, "mnt");
    const { exited } = await startLazyMount(lazyRef, target, env);
    const { readFile } = await import("node:fs/promises");
    expect(await readFile(join(target, "etc", "os-release"), "utf8")).toMatch(/^ID=/m);
    await lazypull(["umount", target], { env });
    expect(await exited).not.toBeNull();
    expect(await mountsUnder(work)).toEqual([]);
  });
});

describe("after `lazypull mount` is killed with SIGKILL", () => {
  it("should let `lazypull umount DIR` undo what it left and exit 0", async () => {
    const target = join(work, "mnt-killed");
    const { child, exited } = await startLazyMount(lazyRef, target, env);
    child.kill("SIGKILL");
    await exited;
    expect((await mountsUnder(work)).some((m) => m.split(" ")[1] === target)).toBe(true);
    const res = await lazypull(["umount", target], { env, allowFail: true });
    expect({ code: res.code, stderr: res.stderr }).toEqual({ code: 0, stderr: "" });
    // afterEach: nothing mounted under the suite's directories any more
    const { readdir } = await import("node:fs/promises");
    expect(await readdir(join(work, "state", "mounts")).catch(() => [])).toEqual([]);
  });

  it("should have lazypulld's start clean up what it left", async () => {
    const target = join(work, "mnt-killed-daemon");
    const { child, exited } = await startLazyMount(lazyRef, target, env);
    child.kill("SIGKILL");
    await exited;
    expect((await mountsUnder(work)).some((m) => m.split(" ")[1] === target)).toBe(true);
    const dir = join(work, "lazypulld");
    await mkdir(join(dir, "run"), { recursive: true, mode: 0o700 });
    await writeFile(join(dir, "config.json"), JSON.stringify({ cacheDir: join(dir, "cache"), prefetch: "none", logLevel: "info" }));
    const daemon = await spawnDaemon({ socket: join(dir, "run", "lazypulld.sock"), root: join(dir, "root"), config: join(dir, "config.json"), store: false, env });
    try {
      expect((await mountsUnder(work)).filter((m) => !m.split(" ")[1]!.startsWith(dir))).toEqual([]);
      expect(daemon.log()).toContain("cleaned up after a dead lazypull process");
    } finally {
      daemon.child.kill("SIGTERM");
      await daemon.exited;
    }
  });
});

describe.skipIf(Boolean(external))("a multi-layer image with whiteouts", () => {
  beforeAll(async () => {
    // Layer 2 adds a file, deletes /etc/issue with a whiteout, and replaces /usr/share/doc/bash's
    // contents with an opaque directory holding one new file.
    const dir = join(work, "layer2");
    await mkdir(join(dir, "etc"), { recursive: true });
    await mkdir(join(dir, "usr", "share", "doc", "bash"), { recursive: true });
    await writeFile(join(dir, "etc", "added-by-layer2"), "layer two\n");
    await writeFile(join(dir, "etc", ".wh.issue"), "");
    await writeFile(join(dir, "usr", "share", "doc", "bash", ".wh..wh..opq"), "");
    await writeFile(join(dir, "usr", "share", "doc", "bash", "only-me"), "opaque\n");
    const tar = join(work, "layer2.tar");
    await run("tar", ["--numeric-owner", "--owner=0", "--group=0", "-C", dir, "-cf", tar, "."]);
    const image = await importImage({
      registryHost: registryHost,
      repository: "library/debian-multi",
      tag: "v2",
      layers: [{ tar: await debianRootfsTar() }, { tar }],
    });
    multiRef = `${registryHost}/lazy/debian-multi:v2-esgz`;
    await lazypull(["convert", image.ref, multiRef], { env, timeoutMs: 600_000 });
  });

  it("should show the merged view: additions, whiteouts and opaque directories", async () => {
    const script = "cat /etc/added-by-layer2; test -e /etc/issue && echo issue-present || echo issue-gone; ls /usr/share/doc/bash";
    const res = await lazypull(["run", "--rm", multiRef, "sh", "-c", script], { env });
    expect(res.stdout.split("\n").filter(Boolean)).toEqual(["layer two", "issue-gone", "only-me"]);
  });
});

describe("an image whose layer's TOC does not verify", () => {
  it("ends `lazypull run` with the layer's error, even when podman started before the TOC was read, and leaves nothing mounted", async () => {
    // the TOC's bytes are the real ones; the digest the manifest vouches for is not theirs
    const lying = await pushLyingTocDigest(lazyRef, 0, "lying-toc");
    const run = await lazypull(["run", "--rm", lying, "cat", "/etc/os-release"], { env, allowFail: true });
    expect(run.code).not.toBe(0);
    expect(run.stdout).not.toContain("bookworm");
    expect(run.stderr).toMatch(/cannot be opened.*TOC/s);
  });
});

describe.skipIf(Boolean(external))("compatibility", () => {
  it("should still pull and run with plain podman", async () => {
    const store = join(work, "podman-store");
    const podman = ["--root", join(store, "root"), "--runroot", join(store, "runroot")];
    await run("podman", [...podman, "pull", "--quiet", "--tls-verify=false", lazyRef], { timeoutMs: 300_000 });
    const res = await run("podman", [...podman, "run", "--rm", "--runtime", "runc", "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096", "--network", "none", lazyRef, "cat", "/etc/debian_version"]);
    expect(res.stdout.trim()).toMatch(/^12\.\d+$/);
    await run("podman", [...podman, "rmi", "--all", "--force"], { allowFail: true });
  });
});
