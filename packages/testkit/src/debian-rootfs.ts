import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { run } from "./run.js";

/** Where slow-to-build fixtures live between test runs (`LAZYPULL_TEST_CACHE` overrides). */
export function testCacheDir(): string {
  return process.env.LAZYPULL_TEST_CACHE ?? join(homedir(), ".cache", "lazypull-test");
}

/**
 * A real Debian bookworm minbase root filesystem as a tar (about 170 MB), built once with
 * `mmdebstrap` and cached; concurrent callers (vitest forks) wait on one `flock`.
 */
export async function debianRootfsTar(variant: { include?: string[] } = {}): Promise<string> {
  const dir = testCacheDir();
  await mkdir(dir, { recursive: true });
  const suffix = variant.include?.length ? `-${variant.include.join("+")}` : "";
  const out = join(dir, `debian-bookworm-minbase${suffix}.tar`);
  if (existsSync(out)) return out;
  const include = variant.include?.length ? `--include=${variant.include.join(",")}` : "";
  const script =
    `test -f '${out}' || { mmdebstrap --quiet --format=tar --variant=minbase ${include} bookworm '${out}.tmp' ` +
    `&& mv '${out}.tmp' '${out}'; }`;
  await run("flock", [`${out}.lock`, "sh", "-c", script], { timeoutMs: 20 * 60_000 });
  return out;
}
