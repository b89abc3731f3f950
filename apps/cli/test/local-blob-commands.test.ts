import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLI_ENTRY, REPO_ROOT, run, runCli, sourceArgs } from "@lazypull/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

async function lazypull(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await runCli(args, { allowFail: true });
  return { code: r.code ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describe("lazypull convert / toc / ls / cat on local files", () => {
  let dir: string;
  let blob: string;
  const big = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 31) % 256));

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "lazypull-cli-esgz-"));
    const src = join(dir, "src");
    await mkdir(join(src, "etc"), { recursive: true });
    await mkdir(join(src, "usr/bin"), { recursive: true });
    await writeFile(join(src, "etc/hostname"), "box\n");
    await writeFile(join(src, "usr/bin/big"), big);
    await symlink("/etc/hostname", join(src, "etc/alias"));
    await run("tar", ["--numeric-owner", "--owner=0", "--group=0", "--mtime=@1700000000", "-czf", join(dir, "layer.tar.gz"), "-C", src, "."]);
    await writeFile(join(dir, "prio.txt"), "# first\nusr/bin/big\n");
    blob = join(dir, "layer.esgz");
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("should convert with --json and print the digests and sizes", async () => {
    const r = await lazypull("convert", join(dir, "layer.tar.gz"), blob, "--chunk-size", "65536", "--level", "6", "--prioritize", join(dir, "prio.txt"), "--json");
    expect(r.code).toEqual(0);
    const out = JSON.parse(r.stdout);
    expect(Object.keys(out).sort()).toEqual(["blobDigest", "blobSize", "diffId", "footerSize", "missingPrioritized", "tocDigest", "tocLength", "tocOffset", "uncompressedSize"]);
    expect(out.blobSize).toEqual((await readFile(blob)).length);
    // where the TOC is, as a registry convert records it in the layer's annotations: TOC then footer end the blob
    expect(out.tocOffset + out.tocLength + out.footerSize).toEqual(out.blobSize);
    const toc = await lazypull("toc", blob, "--verify", out.tocDigest);
    expect(toc.code).toEqual(0);
    const names = JSON.parse(toc.stdout).entries.map((e: { name: string }) => e.name);
    expect(names.slice(0, 5)).toEqual(["./", "usr", "usr/bin", "usr/bin/big", "usr/bin/big"]);
    expect(names).toContain(".prefetch.landmark");
  });

  it("should list and cat through range reads, following symlinks inside the layer", async () => {
    const ls = await lazypull("ls", blob, "/etc");
    expect(ls.stdout.trim().split("\n").map((l) => l.replace(/^(\S+)\s+\d+\s+(\S+)\s+(\S+).*? (\S+( -> \S+)?)$/, "$1 $2 $3 $4"))).toEqual([
      "lrwxrwxrwx 0/0 13 alias -> /etc/hostname",
      "-rw-r--r-- 0/0 4 hostname",
    ]);
    expect((await lazypull("cat", blob, "etc/alias")).stdout).toEqual("box\n");
    const node = [process.execPath, ...sourceArgs(CLI_ENTRY)].map((a) => `'${a}'`).join(" ");
    const cat = await run("sh", ["-c", `${node} cat '${blob}' /usr/bin/big | sha256sum`], { cwd: REPO_ROOT });
    const { createHash } = await import("node:crypto");
    expect(cat.stdout.split(" ")[0]).toEqual(createHash("sha256").update(big).digest("hex"));
  });

  it("should fail with one line and a non-zero exit on a truncated blob, a digest mismatch or a missing path", async () => {
    const data = await readFile(blob);
    await writeFile(join(dir, "cut.esgz"), data.subarray(0, data.length - 20));
    const results = await Promise.all([
      lazypull("ls", join(dir, "cut.esgz")),
      lazypull("toc", blob, "--verify", `sha256:${"0".repeat(64)}`),
      lazypull("cat", blob, "etc/nope"),
      // a file that is not there is "no such file", not an invalid image reference
      lazypull("convert", join(dir, "no-such-layer.tar"), join(dir, "out.esgz")),
    ]);
    expect(results.map((r) => [r.code, r.stderr.trim().split("\n").length, r.stderr.split(":")[1]?.trim()])).toEqual([
      [1, 1, "ESTARGZ_BAD_FOOTER"],
      [1, 1, "ESTARGZ_TOC_DIGEST_MISMATCH"],
      [1, 1, "IMAGE_PATH_NOT_FOUND"],
      [1, 1, "CLI_NO_SUCH_FILE"],
    ]);
  });
});
