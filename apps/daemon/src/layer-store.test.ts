import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { LazyFs } from "@lazypull/fuse-fs";
import type { RegistryClient } from "@lazypull/registry-client";
import { StoreLayers } from "./layer-store.js";

const REF = "127.0.0.1:5000/lazy/img:v1";
const d = (c: string) => `sha256:${c.repeat(64)}`;
const TOC = "containerd.io/snapshot/stargz/toc.digest";
const SIZE = "io.containers.estargz.uncompressed-size";

/** A resolved image: layer 0 eStargz, layer 1 plain gzip. */
function fakeClient(allEstargz = false) {
  let resolves = 0;
  const client = {
    resolve: async () => {
      resolves++;
      return {
        ref: { toString: () => REF },
        manifest: {
          layers: [
            { mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: d("a"), size: 100, annotations: { [TOC]: d("t"), [SIZE]: "300" } },
            allEstargz
              ? { mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: d("b"), size: 50, annotations: { [TOC]: d("u"), [SIZE]: "60" } }
              : { mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: d("b"), size: 50 },
          ],
        },
        config: { config: { Cmd: ["/bin/true"] }, rootfs: { type: "layers", diff_ids: [d("1"), d("2")] } },
      };
    },
    fetchRange: async () => Buffer.from("x"),
  };
  return { client: client as unknown as RegistryClient, resolves: () => resolves };
}

/** a served layer's tree holding `etc/passwd` and `bin/true` (enough for a prediction), recording its prefetches */
function fakeTree(digest: string, prefetched: string[]) {
  const node = (path: string, type: "dir" | "reg") => ({ path, type, mode: 0o755, uid: 0, gid: 0, size: 4, mtimeMs: 0, xattrs: {}, nlink: 1, ino: 1 });
  const nodes: Record<string, ReturnType<typeof node>> = { "": node("", "dir"), etc: node("etc", "dir"), bin: node("bin", "dir"), "etc/passwd": node("etc/passwd", "reg"), "bin/true": node("bin/true", "reg") };
  return {
    digest,
    lookup: (p: string) => nodes[p],
    readdir: () => undefined,
    read: async () => Buffer.from("data"),
    prefetch: async (paths: string[]) => void prefetched.push(...paths.map((p) => `${digest.slice(7, 8)}:${p}`)),
    progress: () => ({ requests: 0, bytesFetched: 0 }),
  };
}

function fakeFs() {
  const refs = new Map<string, number>();
  const prefetched: string[] = [];
  const fs = {
    prefetched,
    layerTree: (digest: string) => ((refs.get(digest) ?? 0) > 0 ? fakeTree(digest, prefetched) : undefined),
    addLayer: async (spec: { descriptor: { digest: string } }) => {
      const hex = spec.descriptor.digest.slice(7);
      refs.set(spec.descriptor.digest, (refs.get(spec.descriptor.digest) ?? 0) + 1);
      return { dir: `/mnt/${hex}`, overlayDir: `/mnt/${hex}.overlay` };
    },
    releaseLayer: (digest: string) => refs.set(digest, (refs.get(digest) ?? 0) - 1),
  };
  return { fs: fs as unknown as LazyFs, refs, prefetched };
}

describe("StoreLayers (lazypulld's side of the Additional Layer Store)", () => {
  let dir: string;
  const log = pino({ level: "silent" });
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "lazypull-store-layers-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const open = (fs: LazyFs, client: RegistryClient, idleMs = 60_000) => StoreLayers.open({ fs, client, log, usesFile: join(dir, "uses.json"), idleMs });

  it("should serve an eStargz layer by blob or TOC digest with podman's info, and nothing else", async () => {
    const { client, resolves } = fakeClient();
    const { fs, refs } = fakeFs();
    const s = await open(fs, client);
    const [a, again] = await Promise.all([s.lookup(REF, d("a")), s.lookup(REF, d("a"))]);
    expect(a).toBe(again);
    expect(a?.diffDir).toBe(`/mnt/${"a".repeat(64)}.overlay`);
    expect(a?.info).toEqual({ "compressed-diff-digest": d("a"), "compressed-size": 100, "diff-digest": d("1"), "diff-size": 300, compression: 2 });
    expect((await s.lookup(REF, d("t")))?.info["compressed-diff-digest"]).toBe(d("a"));
    expect(await s.lookup(REF, d("b"))).toBeUndefined(); // not eStargz: podman pulls it
    expect(await s.lookup(REF, d("c"))).toBeUndefined(); // not a layer of the image
    expect(resolves()).toBe(1);
    expect(refs.get(d("a"))).toBe(2); // one per name podman used
    await s.close();
    expect(refs.get(d("a"))).toBe(0);
  });

  it("should prefetch the image's start once every layer is served, once per image", async () => {
    const { fs, prefetched } = fakeFs();
    const store = await open(fs, fakeClient(true).client);
    await store.lookup(REF, d("a"));
    expect(prefetched).toEqual([]);
    await store.lookup(REF, d("b"));
    await store.lookup(REF, d("u"));
    await new Promise((r) => setTimeout(r, 20));
    // the upper layer's copies, as the container sees them; the Cmd's program found through its path
    expect(prefetched).toEqual(["b:etc/passwd", "b:bin/true"]);
    await store.close();
  });

  it("should predict an image again once its layers were let go and served anew", async () => {
    const { fs, prefetched, refs } = fakeFs();
    const store = await open(fs, fakeClient(true).client, 1);
    await store.lookup(REF, d("a"));
    await store.lookup(REF, d("b"));
    await new Promise((r) => setTimeout(r, 20));
    expect(prefetched).toHaveLength(2);
    // the sweeper (every second at this idle time) lets both unused layers go
    await new Promise((r) => setTimeout(r, 1300));
    expect(refs.get(d("a"))).toBe(0);
    await store.lookup(REF, d("a"));
    await store.lookup(REF, d("b"));
    await new Promise((r) => setTimeout(r, 20));
    expect(prefetched).toEqual(["b:etc/passwd", "b:bin/true", "b:etc/passwd", "b:bin/true"]);
    await store.close();
  });

  it("should count podman's uses on disk and restore them, keeping used layers past the idle time", async () => {
    const { client } = fakeClient();
    const { fs, refs } = fakeFs();
    const s = await open(fs, client, 0);
    await s.lookup(REF, d("a"));
    s.use(REF, d("a"));
    s.use(REF, d("a"));
    s.release(REF, d("a"));
    expect(s.status()).toEqual([{ reference: REF, digest: d("a"), blobDigest: d("a"), uses: 1 }]);
    await s.close();
    expect(JSON.parse(await readFile(join(dir, "uses.json"), "utf8"))).toEqual([{ reference: REF, digest: d("a"), uses: 1 }]);

    const restarted = await open(fs, client, 0);
    await restarted.lookup(REF, d("a"));
    (restarted as unknown as { sweep(): void }).sweep();
    expect(restarted.status()).toEqual([{ reference: REF, digest: d("a"), blobDigest: d("a"), uses: 1 }]);
    restarted.release(REF, d("a"));
    restarted.release(REF, d("a")); // a count is never below zero
    (restarted as unknown as { sweep(): void }).sweep();
    expect(restarted.status()).toEqual([]);
    expect(refs.get(d("a"))).toBe(0);
    await restarted.close();
  });
});
