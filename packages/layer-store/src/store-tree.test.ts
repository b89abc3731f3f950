import pino from "pino";
import { describe, expect, it } from "vitest";
import { encodeReference } from "./store-path.js";
import { StoreTree } from "./store-tree.js";
import type { StoreBackend, StoreLayer } from "./types.js";

const REF = "127.0.0.1:5000/lazy/debian:esgz";
const D = `sha256:${"cd".repeat(32)}`;
const DIR = `/${encodeReference(REF)}/${D}`;

function backend(overrides: Partial<StoreBackend> = {}) {
  const calls: string[] = [];
  const blob = Buffer.from("0123456789");
  const layer: StoreLayer = {
    diffDir: "/var/lib/lazypull/daemon/layers/cd.overlay",
    info: { "compressed-diff-digest": D, "compressed-size": blob.length, "diff-digest": `sha256:${"ef".repeat(32)}`, "diff-size": 99, compression: 2 },
    readBlob: async (offset, length) => blob.subarray(offset, offset + length),
  };
  const b: StoreBackend = {
    lookup: async (reference, digest) => (reference === REF && digest === D ? layer : undefined),
    use: (r, d) => calls.push(`use ${r} ${d}`),
    release: (r, d) => calls.push(`release ${r} ${d}`),
    known: () => [{ reference: REF, digests: [D] }],
    ...overrides,
  };
  return { b, calls, layer };
}

const errCode = (p: Promise<unknown> | (() => unknown)) =>
  (typeof p === "function" ? Promise.resolve().then(p) : p).then(
    () => "ok",
    (e: { code?: string }) => e.code,
  );

describe("StoreTree", () => {
  const log = pino({ level: "silent" });

  it("should answer a served layer as diff (a link to the backend's directory), info (JSON) and blob", async () => {
    const { b, layer } = backend();
    const t = new StoreTree(b, log);
    expect((await t.stat(DIR)).mode & 0o170000).toBe(0o040000);
    expect(await t.readlink(`${DIR}/diff`)).toBe(layer.diffDir);
    expect((await t.stat(`${DIR}/diff`)).mode & 0o170000).toBe(0o120000);
    const info = await t.open(`${DIR}/info`);
    const text = (await t.read(info, 0, 4096)).toString();
    expect(JSON.parse(text)).toEqual(layer.info);
    expect((await t.stat(`${DIR}/info`)).size).toBe(Buffer.byteLength(text));
    const blob = await t.open(`${DIR}/blob`);
    expect((await t.read(blob, 3, 4)).toString()).toBe("3456");
    expect((await t.read(blob, 8, 100)).toString()).toBe("89");
    expect((await t.read(blob, 10, 100)).length).toBe(0);
    t.release(blob);
    expect(await errCode(t.read(blob, 0, 1))).toBe("LAYER_STORE_BAD_HANDLE");
    expect((await t.readdir(DIR)).names).toEqual(["diff", "info", "blob"]);
    expect((await t.readdir("/")).names).toEqual([encodeReference(REF).split("/")[0]]);
  });

  it("should answer ENOENT for what the backend does not serve, and for a failing backend", async () => {
    const other = `/${encodeReference(REF)}/sha256:${"00".repeat(32)}`;
    expect(await errCode(new StoreTree(backend().b, log).stat(other))).toBe("LAYER_STORE_NOT_FOUND");
    const failing = new StoreTree(backend({ lookup: async () => Promise.reject(new Error("registry down")) }).b, log);
    expect(await errCode(failing.stat(DIR))).toBe("LAYER_STORE_NOT_FOUND");
    expect(await errCode(failing.stat(`${DIR}/info`))).toBe("LAYER_STORE_NOT_FOUND");
  });

  it("should turn podman's use (create of `use`) and release (rmdir of the layer) into backend calls, answering ENOENT", async () => {
    const { b, calls } = backend();
    const t = new StoreTree(b, log);
    expect(await errCode(() => t.create(`${DIR}/use`))).toBe("LAYER_STORE_NOT_FOUND");
    expect(await errCode(() => t.rmdir(DIR))).toBe("LAYER_STORE_NOT_FOUND");
    expect(calls).toEqual([`use ${REF} ${D}`, `release ${REF} ${D}`]);
    expect(await errCode(t.stat(`${DIR}/use`))).toBe("LAYER_STORE_NOT_FOUND");
  });

  it("should refuse every other write as read-only", async () => {
    const t = new StoreTree(backend().b, log);
    expect(await errCode(() => t.create(`${DIR}/other`))).toBe("LAYER_STORE_READ_ONLY");
    expect(await errCode(() => t.rmdir(`/${encodeReference(REF)}`))).toBe("LAYER_STORE_READ_ONLY");
    expect(await errCode(() => t.unlink(`${DIR}/info`))).toBe("LAYER_STORE_READ_ONLY");
  });
});
