import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { processStartTime } from "@lazypull/host";
import { createState, mountKey } from "./state.js";

describe("createState for a mount target", () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "lazypull-state-"));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  async function recordOwner(target: string, pid: number, startTime: number | null) {
    const dir = join(root, "mounts", mountKey(target));
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "state.json"), JSON.stringify({ version: 1, kind: "mount", id: mountKey(target), ownerPid: pid, ownerStartTime: startTime, createdAt: "", mounts: [], target }));
  }

  it("should refuse a target a live lazypull serves, leaving its record alone", async () => {
    const target = join(root, "busy");
    const parent = process.ppid;
    await recordOwner(target, parent, await processStartTime(parent));
    await expect(createState({ stateRoot: root }, { target })).rejects.toMatchObject({ code: "OVERLAY_TARGET_BUSY", context: { ownerPid: parent } });
  });

  it("should take over the record of a dead owner (or of a reused pid)", async () => {
    const target = join(root, "stale");
    const parent = process.ppid;
    await recordOwner(target, parent, ((await processStartTime(parent)) ?? 0) + 1);
    const state = await createState({ stateRoot: root }, { target });
    expect(state.record.ownerPid).toBe(process.pid);
  });
});
