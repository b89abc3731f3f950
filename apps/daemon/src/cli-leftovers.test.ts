import { mkdir, mkdtemp, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanCliLeftovers } from "./cli-leftovers.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "lazypulld-leftovers-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("cleanCliLeftovers", () => {
  it("should look in the rootless user's state root when it runs inside that user's podman unshare", async () => {
    const runtime = join(dir, "run");
    // a container dir a killed `lazypull run` left before writing its state, old enough to be stale
    const left = join(runtime, "lazypull", "containers", "abc123");
    await mkdir(left, { recursive: true });
    const old = new Date(Date.now() - 10 * 60_000);
    await utimes(left, old, old);
    const config = join(dir, "config.json");
    await writeFile(config, "{}");
    const env = { _CONTAINERS_ROOTLESS_UID: "1001", _CONTAINERS_ROOTLESS_GID: "1001", _CONTAINERS_USERNS_CONFIGURED: "done", XDG_RUNTIME_DIR: runtime, LAZYPULL_CONFIG: config };
    const lines: { msg: string; stateRoot?: string }[] = [];
    const log = pino({ level: "debug" }, { write: (l: string) => lines.push(JSON.parse(l) as { msg: string }) });
    await cleanCliLeftovers(log, env);
    expect(await stat(left).catch(() => "gone")).toBe("gone");
    expect(lines.find((l) => l.stateRoot)?.stateRoot).toBe(join(runtime, "lazypull"));
    expect(lines.map((l) => l.msg)).toContain("cleaned up after a dead lazypull process");
  });
});
