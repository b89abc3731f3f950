import { copyFile, mkdir, mkdtemp, rm, symlink, writeFile, link } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { debianRootfsTar, importImage, run } from "@lazypull/testkit";
import { lazypull, mountsUnder, overlayEnv, OVERLAY_KINDS, startLazyMount } from "./helpers.js";

/**
 * The two overlays lazypull can stack layers with — kernel overlayfs over fuse-fs' overlay-form
 * directories, and fuse-overlayfs over the OCI-form ones — must show exactly the root filesystem
 * podman itself builds from the same image. Compared from the host: `lazypull mount` against
 * `podman image mount` of the original gzip image (podman's own overlay driver, as `podman run` uses).
 */
const registryHost = inject("registryHost");
const external = process.env.E2E_SOURCE_IMAGE;
let work: string;
let sourceRef: string;
let multiRef: string;
let manyRef: string;
let podmanRoot: string | undefined;
const podmanStore = () => ["--root", join(work, "podman", "root"), "--runroot", join(work, "podman", "runroot")];

/** One line per path: type, mode, owner, size, nlink-free content hash, link target, device, capability. */
const SNAPSHOT_PY = String.raw`
import hashlib, json, os, stat, sys
root = sys.argv[1]
out = {}
for d, dirs, files in os.walk(root):
    dirs.sort()
    for name in sorted(dirs + files):
        p = os.path.join(d, name)
        rel = os.path.relpath(p, root)
        st = os.lstat(p)
        row = {"mode": oct(st.st_mode), "uid": st.st_uid, "gid": st.st_gid}
        if stat.S_ISREG(st.st_mode):
            h = hashlib.sha256()
            with open(p, "rb") as f:
                for b in iter(lambda: f.read(1 << 20), b""):
                    h.update(b)
            row["size"] = st.st_size
            row["sha256"] = h.hexdigest()
        elif stat.S_ISLNK(st.st_mode):
            row["link"] = os.readlink(p)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            row["rdev"] = [os.major(st.st_rdev), os.minor(st.st_rdev)]
        try:
            row["cap"] = os.getxattr(p, "security.capability", follow_symlinks=False).hex()
        except OSError:
            pass
        out[rel] = row
json.dump(out, sys.stdout, sort_keys=True)
`;

async function snapshot(root: string): Promise<Record<string, Record<string, unknown>>> {
  const res = await run("python3", ["-c", SNAPSHOT_PY, root], { timeoutMs: 300_000 });
  return JSON.parse(res.stdout) as Record<string, Record<string, unknown>>;
}

async function tarOf(dir: string, tar: string): Promise<string> {
  await run("tar", ["--numeric-owner", "--owner=0", "--group=0", "--xattrs", "--xattrs-include=security.capability", "-C", dir, "-cf", tar, "."]);
  return tar;
}

/** Layer 1 sets up what layer 2 changes: every kind of change overlay has to express. */
async function layerTars(): Promise<string[]> {
  const one = join(work, "l1");
  await mkdir(join(one, "t", "gone-dir"), { recursive: true });
  await mkdir(join(one, "t", "opq"), { recursive: true });
  await mkdir(join(one, "t", "d2f", "x"), { recursive: true });
  await mkdir(join(one, "t", "mvdir", "two"), { recursive: true });
  await mkdir(join(one, "t", "rmdir"), { recursive: true });
  await writeFile(join(one, "t", "gone-file"), "whited out\n");
  await writeFile(join(one, "t", "gone-dir", "a"), "a\n");
  await writeFile(join(one, "t", "opq", "old1"), "old\n");
  await writeFile(join(one, "t", "opq", "old2"), "old\n");
  await writeFile(join(one, "t", "f2d"), "file, then a directory\n");
  await writeFile(join(one, "t", "d2f", "x", "y"), "directory, then a file\n");
  await writeFile(join(one, "t", "hl-a"), "shared by a hardlink pair\n");
  await link(join(one, "t", "hl-a"), join(one, "t", "hl-b"));
  await writeFile(join(one, "t", "mvdir", "one"), "1\n");
  await writeFile(join(one, "t", "mvdir", "two", "three"), "3\n");
  await writeFile(join(one, "t", "rmdir", "x"), "x\n");

  const two = join(work, "l2");
  await mkdir(join(two, "t", "opq"), { recursive: true });
  await mkdir(join(two, "t", "f2d"), { recursive: true });
  await writeFile(join(two, "t", ".wh.gone-file"), "");
  await writeFile(join(two, "t", ".wh.gone-dir"), "");
  await writeFile(join(two, "t", "opq", ".wh..wh..opq"), "");
  await writeFile(join(two, "t", "opq", "new"), "only this\n");
  await writeFile(join(two, "t", "f2d", "inner"), "now a directory\n");
  await writeFile(join(two, "t", "d2f"), "now a file\n");
  await writeFile(join(two, "t", "hl-a"), "replaced in layer 2; hl-b keeps the old bytes\n");
  await copyFile("/bin/true", join(two, "t", "capbin"));
  await run("setcap", ["cap_net_raw+ep", join(two, "t", "capbin")]);
  await run("mknod", [join(two, "t", "null-copy"), "c", "1", "3"]);
  await symlink("loop-b", join(two, "t", "loop-a"));
  await symlink("loop-a", join(two, "t", "loop-b"));
  return [await tarOf(one, join(work, "l1.tar")), await tarOf(two, join(work, "l2.tar"))];
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "lazypull-e2e-overlay-"));
  if (external) return;
  const env = overlayEnv(work, "fuse-overlayfs");
  const [l1, l2] = await layerTars();
  const image = await importImage({ registryHost, repository: "library/overlay-kinds", tag: "v1", layers: [{ tar: await debianRootfsTar() }, { tar: l1! }, { tar: l2! }] });
  sourceRef = image.ref;
  multiRef = `${registryHost}/lazy/overlay-kinds:v1-esgz`;
  await lazypull(["convert", sourceRef, multiRef], { env, timeoutMs: 600_000 });

  // 80 layers: the base and 79 that each add one file
  const layers = [{ tar: await debianRootfsTar() }];
  for (let i = 1; i < 80; i++) {
    const d = join(work, "many", String(i));
    await mkdir(join(d, "layers"), { recursive: true });
    await writeFile(join(d, "layers", String(i)), `${i}\n`);
    layers.push({ tar: await tarOf(d, `${d}.tar`) });
  }
  const many = await importImage({ registryHost, repository: "library/eighty-layers", tag: "v1", layers });
  manyRef = `${registryHost}/lazy/eighty-layers:v1-esgz`;
  await lazypull(["convert", many.ref, manyRef], { env, timeoutMs: 600_000 });
});

afterAll(async () => {
  if (podmanRoot) await run("podman", [...podmanStore(), "image", "unmount", "--all", "--force"], { allowFail: true });
  if (work && !external) await run("podman", [...podmanStore(), "rmi", "--all", "--force"], { allowFail: true });
  // podman keeps its store's own bind mount (`<root>/overlay`) after the image is gone
  const left = work ? (await mountsUnder(work)).map((m) => m.split(" ")[1]!).sort((a, b) => b.length - a.length) : [];
  for (const m of left) await run("umount", ["-l", m], { allowFail: true });
  if (work) await rm(work, { recursive: true, force: true });
});

afterEach(async () => {
  // podman's own store keeps the reference image mounted until afterAll
  const podmanDir = join(work, "podman");
  expect((await mountsUnder(work)).filter((m) => !m.split(" ")[1]!.startsWith(podmanDir))).toEqual([]);
});

/** The root podman's own overlay driver builds from the original (gzip) image. */
async function podmanRootfs(): Promise<string> {
  if (podmanRoot) return podmanRoot;
  await run("podman", [...podmanStore(), "pull", "--quiet", "--tls-verify=false", sourceRef], { timeoutMs: 300_000 });
  podmanRoot = (await run("podman", [...podmanStore(), "image", "mount", sourceRef])).stdout.trim();
  return podmanRoot;
}

/** `lazypull mount` in the background until `fn` is done, then `lazypull umount`. */
async function withLazyMount<T>(env: NodeJS.ProcessEnv, ref: string, target: string, fn: (stderr: string) => Promise<T>): Promise<T> {
  let mount: Awaited<ReturnType<typeof startLazyMount>> | undefined;
  try {
    mount = await startLazyMount(ref, target, env);
    return await fn(mount.stderr());
  } finally {
    await lazypull(["umount", target], { env, allowFail: true });
    await mount?.exited;
  }
}

describe.skipIf(Boolean(external)).each(OVERLAY_KINDS)("the merged root under %s", (kind) => {
  const env = () => overlayEnv(work, kind);

  it("should equal podman's own for every path: type, mode, owner, bytes, links, devices, capabilities", async () => {
    const want = await snapshot(await podmanRootfs());
    const target = join(work, `mnt-${kind}`);
    const got = await withLazyMount(env(), multiRef, target, async (stderr) => {
      expect(stderr).toContain(`(overlay: ${kind})`);
      return snapshot(target);
    });
    expect(Object.keys(got).length).toBeGreaterThan(5000);
    // spot checks, so a broken comparison cannot pass by being empty on both sides
    expect(got["t/opq/new"]).toBeDefined();
    expect(got["t/gone-file"]).toBeUndefined();
    expect(got["t/capbin"]?.cap).toMatch(/^0[0-9a-f]+/);
    expect(got["t/null-copy"]?.rdev).toEqual([1, 3]);
    const differences = Object.keys({ ...want, ...got })
      .filter((p) => JSON.stringify(want[p]) !== JSON.stringify(got[p]))
      .map((p) => ({ path: p, podman: want[p], lazypull: got[p] }));
    expect(differences).toEqual([]);
  });

  it("should let a container remove and rename directories that live in a lower layer", async () => {
    const script = [
      "rm -rf /t/rmdir",
      "mv /t/mvdir /t/moved",
      "test -e /t/rmdir || echo rmdir-gone",
      "test -e /t/mvdir || echo mvdir-gone",
      "cat /t/moved/one /t/moved/two/three",
      "ls /t",
    ].join(" && ");
    const res = await lazypull(["run", "--rm", "--stats", multiRef, "sh", "-c", script], { env: env() });
    expect(res.stderr).toContain(`overlay: ${kind};`);
    expect(res.stdout.split("\n").filter(Boolean)).toEqual([
      "rmdir-gone",
      "mvdir-gone",
      "1",
      "3",
      ...["capbin", "d2f", "f2d", "hl-a", "hl-b", "loop-a", "loop-b", "moved", "null-copy", "opq"],
    ]);
  });

  it("should start an image of 80 layers", async () => {
    const res = await lazypull(["run", "--rm", "--stats", manyRef, "sh", "-c", "ls /layers | wc -l; cat /layers/79"], { env: env() });
    expect(res.stderr).toContain(`overlay: ${kind};`);
    expect(res.stdout.split("\n").filter(Boolean)).toEqual(["79", "79"]);
  });
});
