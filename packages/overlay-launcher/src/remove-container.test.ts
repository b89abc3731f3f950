import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeContainer } from "./remove-container.js";

let dir: string;

/**
 * A stand-in podman: `rm` fails while a counter file says the container is locked, and the
 * container exists until `rm` succeeded once. Every call is logged.
 */
async function fakePodman(name: string, lockedFor: number, existsCode = 0): Promise<{ binary: string; log: () => Promise<string[]> }> {
  const state = join(dir, `${name}.state`);
  const log = join(dir, `${name}.log`);
  await writeFile(state, String(lockedFor));
  const binary = join(dir, `${name}.sh`);
  await writeFile(
    binary,
    `#!/bin/sh
echo "$*" >> ${log}
n=$(cat ${state})
for a in "$@"; do case "$a" in rm|container) cmd=$a; break ;; esac; done
case "$cmd" in
  rm) if [ "$n" -gt 0 ]; then echo $((n-1)) > ${state}; echo "container is locked" >&2; exit 2; fi; echo gone > ${state}; exit 0 ;;
  container) if [ "$n" = gone ]; then exit 1; fi; exit ${existsCode} ;;
esac
exit 125
`,
  );
  await chmod(binary, 0o755);
  return { binary, log: async () => (await readFile(log, "utf8")).trim().split("\n") };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "lazypull-rmc-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("removeContainer", () => {
  it("should try again while the container is locked, until it is gone", async () => {
    const p = await fakePodman("locked", 2);
    expect(await removeContainer({ binary: p.binary, globalArgs: ["--log-level", "error"] }, "c1", { delayMs: 1 })).toEqual({ gone: true });
    expect(await p.log()).toEqual([
      "--log-level error rm --force --time 0 c1",
      "--log-level error container exists c1",
      "--log-level error rm --force --time 0 c1",
      "--log-level error container exists c1",
      "--log-level error rm --force --time 0 c1",
      "--log-level error container exists c1",
    ]);
  });

  it("should give up after its attempts and say what podman said", async () => {
    const p = await fakePodman("stuck", 100);
    expect(await removeContainer({ binary: p.binary, globalArgs: [] }, "c2", { attempts: 3, delayMs: 1 })).toEqual({
      gone: false,
      error: "podman container c2 still exists after 3 attempts to remove it: container is locked",
    });
  });

  it("should count a container that never existed as gone", async () => {
    const p = await fakePodman("absent", 0, 1);
    expect(await removeContainer({ binary: p.binary, globalArgs: [] }, "c3")).toEqual({ gone: true });
  });

  it("should report a missing podman binary", async () => {
    expect(await removeContainer({ binary: join(dir, "no-such-podman"), globalArgs: [] }, "c4")).toEqual({ gone: false, error: `${join(dir, "no-such-podman")} not found` });
  });
});
