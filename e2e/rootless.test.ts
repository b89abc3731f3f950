// Rootless, on real parts: an ordinary user (subordinate ids, /dev/fuse usable as udev makes it) runs the
// real CLI against the suite's registry and image; lazypull enters rootless podman's namespaces itself.
// Checked: output and exit codes, ownership and modes inside the container as the image says, copy-on-write,
// `-u 1000`, `mount`/`umount`, and nothing mounted in either namespace after exit, SIGINT and SIGKILL.
import { spawn } from "node:child_process";
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CLI_ENTRY,
  REPO_ROOT,
  debianRootfsTar,
  ensureTestUser,
  importImage,
  openHostToUsers,
  podmanAsUser,
  restoreHostModes,
  run,
  sourceArgs,
  userEnv,
  type RunResult,
  type TestUser,
} from "@lazypull/testkit";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { lazypull, OVERLAY_KINDS, processesMentioning } from "./helpers.js";

const lazyRef = inject("lazyRef");
const registryHost = inject("registryHost");
const convertEnv = inject("convertEnv");

const USER = "lazypull-rootless";
const NO_SUBIDS_USER = "lazypull-nosubids";

let user: TestUser;
let noSubids: TestUser;
let work: string;
let ownedRef: string;

/** The real CLI from source, as `u`. */
function asUser(u: TestUser, args: string[], opts: { allowFail?: boolean; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  const child = spawnAsUser(u, args, opts.env);
  return collect(child, `lazypull ${args.join(" ")} as ${u.name}`, opts.allowFail, opts.timeoutMs ?? 240_000);
}

function spawnAsUser(u: TestUser, args: string[], env?: NodeJS.ProcessEnv, detached = false) {
  return spawn(process.execPath, [...sourceArgs(CLI_ENTRY), ...args], { uid: u.uid, gid: u.gid, cwd: REPO_ROOT, env: userEnv(u, env), stdio: ["ignore", "pipe", "pipe"], detached });
}

function collect(child: ReturnType<typeof spawn>, what: string, allowFail = false, timeoutMs = 240_000): Promise<RunResult> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout?.on("data", (b: Buffer) => out.push(b));
  child.stderr?.on("data", (b: Buffer) => err.push(b));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  return new Promise((resolve, reject) => {
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      const res = { code, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
      if (code !== 0 && !allowFail) reject(new Error(`${what} exited ${code ?? signal}: ${res.stderr.slice(-2000)}`));
      else resolve(res);
    });
  });
}

/** Mounts of the user's state (its runtime dir) in the host's namespace and in rootless podman's. */
async function userMounts(u: TestUser): Promise<{ host: string[]; userns: string[] }> {
  const mine = [join(u.runtimeDir, "lazypull"), join(u.home, ".cache", "lazypull"), join(u.home, "mnt")];
  const pick = (text: string) => text.split("\n").filter((l) => mine.some((m) => l.includes(m)));
  const host = pick(await readFile("/proc/self/mountinfo", "utf8"));
  const inside = await podmanAsUser(u, ["unshare", "cat", "/proc/self/mountinfo"], { allowFail: true });
  return { host, userns: pick(inside.stdout) };
}

async function waitForNoMounts(u: TestUser, timeoutMs: number): Promise<{ host: string[]; userns: string[] }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = await userMounts(u);
    if ((m.host.length === 0 && m.userns.length === 0) || Date.now() > deadline) return m;
    await new Promise((r) => setTimeout(r, 250));
  }
}

function waitForText(stream: NodeJS.ReadableStream | null, text: string, timeoutMs = 120_000): Promise<void> {
  let seen = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "${text}" within ${timeoutMs} ms: ${seen}`)), timeoutMs);
    stream?.on("data", (b: Buffer) => {
      seen += b.toString();
      if (seen.includes(text)) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

beforeAll(async () => {
  user = await ensureTestUser(USER);
  noSubids = await ensureTestUser(NO_SUBIDS_USER, { subids: false });
  // /dev/fuse as udev makes it, and the checkout the users run the CLI from readable to them
  await openHostToUsers();
  work = await mkdtemp(join(tmpdir(), "lazypull-e2e-rootless-"));
  await chmod(work, 0o755);

  // an image with a file the image says belongs to uid 1000, on the suite's Debian (converted once)
  const top = join(work, "top");
  await mkdir(join(top, "srv", "owned"), { recursive: true });
  await writeFile(join(top, "srv", "owned", "by-1000"), "mine\n");
  // /srv stays root's 0755; only what is below it belongs to uid 1000
  const tarPath = join(work, "top.tar");
  await run("tar", ["--numeric-owner", "--owner=0", "--group=0", "--mode=755", "--no-recursion", "-C", top, "-cf", tarPath, "srv"]);
  await run("tar", ["--numeric-owner", "--owner=1000", "--group=1000", "--mode=u=rwX,g=rX,o=", "--no-recursion", "-C", top, "-rf", tarPath, "srv/owned", "srv/owned/by-1000"]);
  const src = await importImage({ registryHost, repository: "src/debian-owned", tag: "v1", layers: [{ tar: await debianRootfsTar() }, { tar: tarPath }] });
  ownedRef = `${registryHost}/lazy/debian-owned:v1-esgz`;
  await lazypull(["convert", src.ref, ownedRef], { env: convertEnv, timeoutMs: 600_000 });
});

afterAll(async () => {
  for (const u of [USER, NO_SUBIDS_USER]) {
    // rootless podman's pause process (and anything a failed test left) holds the user's namespaces
    await run("pkill", ["-KILL", "-u", u], { allowFail: true });
  }
  await restoreHostModes();
  await rm(work, { recursive: true, force: true });
});

describe.each(OVERLAY_KINDS)("lazypull run as an ordinary user (%s)", (kind) => {
  let env: NodeJS.ProcessEnv;
  beforeAll(async () => {
    const config = join(work, `config-${kind}.json`);
    await writeFile(config, JSON.stringify({ overlay: kind }));
    await chmod(config, 0o644);
    env = { LAZYPULL_CONFIG: config };
  });

  it("should run the image with the owners and modes the image gives, and leave nothing mounted", async () => {
    const res = await asUser(user, ["run", "--rm", "--stats", lazyRef, "sh", "-c", "stat -c '%u %g %a' /usr/bin/cat /etc/shadow; id -u; head -1 /etc/os-release"], { env });
    expect(res.stdout.split("\n").slice(0, 4)).toEqual(["0 0 755", "0 42 640", "0", 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"']);
    expect(res.stderr).toContain(`overlay: ${kind}`);
    expect(await waitForNoMounts(user, 5_000)).toEqual({ host: [], userns: [] });
  });

  it("should pass the container's exit code through and keep its writes to itself", async () => {
    const wrote = await asUser(user, ["run", "--rm", lazyRef, "sh", "-c", "echo changed > /etc/os-release && cat /etc/os-release && exit 7"], { env, allowFail: true });
    expect({ code: wrote.code, stdout: wrote.stdout }).toEqual({ code: 7, stdout: "changed\n" });
    const next = await asUser(user, ["run", "--rm", lazyRef, "head", "-1", "/etc/os-release"], { env });
    expect(next.stdout).toBe('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n');
  });
});

describe("an ordinary user's containers", () => {
  it("should run as -u 1000, reading what the image lets uid 1000 read and owning what the image gives it", async () => {
    const res = await asUser(user, ["run", "--rm", "-u", "1000", ownedRef, "sh", "-c", "id -u; stat -c '%u %g %a' /srv/owned/by-1000; cat /srv/owned/by-1000; head -1 /etc/os-release; cat /etc/shadow"], {
      allowFail: true,
    });
    // /etc/shadow is root's (0640 root:shadow): uid 1000 may not read it, and the container says so
    expect({ code: res.code, lines: res.stdout.split("\n").slice(0, 4) }).toEqual({
      code: 1,
      lines: ["1000", "1000 1000 640", "mine", 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"'],
    });
    expect(res.stderr).toContain("/etc/shadow: Permission denied");
  });

  it("should mount the image's root where the user's podman namespace sees it, and umount it", async () => {
    const target = join(user.home, "mnt");
    await mkdir(target, { recursive: true });
    await run("chown", [`${user.uid}:${user.gid}`, target]);
    const child = spawnAsUser(user, ["mount", lazyRef, target]);
    const exited = collect(child, "lazypull mount", true);
    await waitForText(child.stderr, "mounted at");
    const seen = await podmanAsUser(user, ["unshare", "head", "-1", join(target, "etc/os-release")]);
    expect(seen.stdout).toBe('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n');
    const umount = await asUser(user, ["umount", target]);
    expect(umount.stderr).toBe("");
    expect((await exited).code).not.toBeNull();
    expect(await waitForNoMounts(user, 10_000)).toEqual({ host: [], userns: [] });
  });

  it("should stop the container gracefully when SIGTERM goes to the whole process group (it reaches lazypull twice)", async () => {
    // its own process group, as a shell job or a systemd unit would have; the container exits 5 on SIGTERM
    const child = spawnAsUser(user, ["run", "--rm", lazyRef, "sh", "-c", "trap 'exit 5' TERM; echo started; sleep 120 & wait"], undefined, true);
    const exited = collect(child, "lazypull run", true);
    await waitForText(child.stdout, "started");
    process.kill(-child.pid!, "SIGTERM");
    const res = await exited;
    // one request to stop, not 137 from a "second signal, kill now": the container's own 5, or 143 when podman
    // run, which the group signal reaches too, answers for it ("container not running"; root gets the same)
    expect([5, 143]).toContain(res.code);
    expect(await waitForNoMounts(user, 30_000)).toEqual({ host: [], userns: [] });
  });

  for (const signal of ["SIGINT", "SIGKILL"] as const) {
    it(`should leave nothing mounted or running after ${signal}`, async () => {
      const child = spawnAsUser(user, ["run", "--rm", "--name", `rootless-${signal.toLowerCase()}`, lazyRef, "sh", "-c", "echo started; sleep 120"]);
      const exited = collect(child, "lazypull run", true);
      await waitForText(child.stdout, "started");
      child.kill(signal);
      const res = await exited;
      if (signal === "SIGKILL") expect(res.signal).toBe("SIGKILL");
      else expect(res.code).not.toBe(0);
      // after SIGKILL the copy inside podman's namespace sees its waiter gone and cleans up by itself
      expect(await waitForNoMounts(user, 30_000)).toEqual({ host: [], userns: [] });
      expect(await processesMentioning(join(user.runtimeDir, "lazypull"), 20_000)).toEqual([]);
      const ps = await podmanAsUser(user, ["ps", "--all", "--format", "{{.Names}}"]);
      expect(ps.stdout.trim()).toBe("");
    });
  }
});

describe("lazypull podman setup by an ordinary user", () => {
  it("should point the user's own storage.conf at the user's store, and take it out again", async () => {
    const conf = join(user.home, ".config", "containers", "storage.conf");
    const store = join(user.home, ".local", "share", "lazypull", "store");
    const original = '[storage]\ndriver = "overlay"\n';
    await mkdir(join(user.home, ".config", "containers"), { recursive: true });
    await writeFile(conf, original);
    await run("chown", ["-R", `${user.uid}:${user.gid}`, join(user.home, ".config")]);
    try {
      const setup = JSON.parse((await asUser(user, ["podman", "setup", "--json"])).stdout) as Record<string, unknown>;
      expect(setup).toMatchObject({ action: "setup", file: conf, changed: true, entry: `${store}:ref` });
      expect(await readFile(conf, "utf8")).toContain(`"${store}:ref"`);
      const removed = JSON.parse((await asUser(user, ["podman", "remove", "--json"])).stdout) as Record<string, unknown>;
      expect(removed).toMatchObject({ action: "remove", file: conf, changed: true });
      expect(await readFile(conf, "utf8")).toBe(original);
    } finally {
      await rm(conf, { force: true });
    }
  });
});

describe("a host where rootless cannot work", () => {
  it("should name the missing subordinate ids and the fix", async () => {
    const res = await asUser(noSubids, ["run", "--rm", lazyRef, "true"], { allowFail: true });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("CLI_ROOTLESS_NO_SUBIDS");
    expect(res.stderr).toContain(`usermod --add-subuids`);
  });

  it("should name /dev/fuse when the user cannot open it", async () => {
    const mode = (await stat("/dev/fuse")).mode & 0o7777;
    await chmod("/dev/fuse", 0o600);
    try {
      const res = await asUser(user, ["run", "--rm", lazyRef, "true"], { allowFail: true });
      expect(res.code).toBe(1);
      expect(res.stderr).toContain("CLI_ROOTLESS_NO_FUSE_DEVICE");
    } finally {
      await chmod("/dev/fuse", mode);
    }
  });
});
