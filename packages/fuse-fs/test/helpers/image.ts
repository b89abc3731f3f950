import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, existsSync } from "node:fs";
import { readFile, rename, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { RegistryClient, parseReference } from "@lazypull/registry-client";
import type { Descriptor, ImageReference } from "@lazypull/registry-client";
import { convertToEstargz } from "@lazypull/stargz-format";
import { testCacheDir } from "@lazypull/testkit";

export interface ConvertedBlob {
  path: string;
  blobDigest: string;
  blobSize: number;
  tocDigest: string;
  diffId: string;
  uncompressedSize: number;
}

/**
 * Converts a tar to eStargz with stargz-format, once per source tar: the result is kept beside the
 * test cache and reused while the tar is unchanged (conversion of Debian takes ~10+ s).
 */
export async function convertCached(tar: string, name: string, opts: { chunkSize?: number } = {}): Promise<ConvertedBlob> {
  const st = await stat(tar);
  const stamp = `${st.size}-${st.mtimeMs}-${opts.chunkSize ?? "default"}`;
  const path = join(testCacheDir(), `${name}.estargz`);
  const meta = `${path}.json`;
  if (existsSync(path) && existsSync(meta)) {
    const m = JSON.parse(await readFile(meta, "utf8")) as ConvertedBlob & { stamp: string };
    if (m.stamp === stamp) return { ...m, path };
  }
  const tmp = `${path}.${process.pid}.tmp`;
  const res = await convertToEstargz(createReadStream(tar), createWriteStream(tmp), {
    ...(opts.chunkSize ? { chunkSize: opts.chunkSize } : {}),
    concurrency: 2,
  });
  await rename(tmp, path);
  const out: ConvertedBlob = {
    path,
    blobDigest: res.blobDigest,
    blobSize: res.blobSize,
    tocDigest: res.tocDigest,
    diffId: res.diffId,
    uncompressedSize: res.uncompressedSize,
  };
  await writeFile(meta, JSON.stringify({ ...out, stamp }));
  return out;
}

export interface PushLayer {
  path: string;
  digest: string;
  size: number;
  mediaType: string;
  diffId: string;
  annotations?: Record<string, string>;
}

/** An eStargz blob as a layer, with the annotations a converter writes. */
export function estargzLayer(b: ConvertedBlob): PushLayer {
  return {
    path: b.path,
    digest: b.blobDigest,
    size: b.blobSize,
    mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
    diffId: b.diffId,
    annotations: {
      "containerd.io/snapshot/stargz/toc.digest": b.tocDigest,
      "io.containers.estargz.uncompressed-size": String(b.uncompressedSize),
    },
  };
}

/** Pushes an image made of the given layer blobs with registry-client. */
export async function pushImage(
  client: RegistryClient,
  refString: string,
  input: (ConvertedBlob | PushLayer)[],
): Promise<{ ref: ImageReference; layers: Descriptor[] }> {
  const ref = parseReference(refString);
  const blobs = input.map((b) => ("blobDigest" in b ? estargzLayer(b) : b));
  const layers: Descriptor[] = [];
  for (const b of blobs) {
    await client.pushBlob(ref, b.digest, b.size, () => createReadStream(b.path));
    layers.push({ mediaType: b.mediaType, digest: b.digest, size: b.size, ...(b.annotations ? { annotations: b.annotations } : {}) });
  }
  const config = Buffer.from(
    JSON.stringify({ architecture: "amd64", os: "linux", config: {}, rootfs: { type: "layers", diff_ids: blobs.map((b) => b.diffId) } }),
  );
  const configDigest = `sha256:${createHash("sha256").update(config).digest("hex")}`;
  await client.pushBlob(ref, configDigest, config.length, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: configDigest, size: config.length },
      layers,
    }),
  );
  await client.pushManifest(ref, manifest, "application/vnd.oci.image.manifest.v1+json");
  return { ref, layers };
}
