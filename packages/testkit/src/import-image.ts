import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { run } from "./run.js";

export interface ImportLayer {
  /** An uncompressed tar. It is gzipped (and the result cached beside it) as an ordinary layer. */
  tar: string;
}

export interface ImportedImage {
  /** `HOST/REPO:TAG` */
  ref: string;
  layers: { digest: string; size: number; diffId: string }[];
}

interface GzipResult {
  digest: string;
  size: number;
  diffId: string;
}

function hashing(hash: ReturnType<typeof createHash>): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
  });
}

/** gzip a tar once (level 1: this is a fixture, speed matters) and remember its digests. */
async function gzipCached(tar: string): Promise<GzipResult & { path: string }> {
  const st = await stat(tar);
  const path = `${tar}.gz`;
  const meta = `${tar}.gz.json`;
  if (existsSync(path) && existsSync(meta)) {
    const m = JSON.parse(await readFile(meta, "utf8")) as GzipResult & { mtimeMs: number; srcSize: number };
    if (m.mtimeMs === st.mtimeMs && m.srcSize === st.size) return { ...m, path };
  }
  const diff = createHash("sha256");
  const blob = createHash("sha256");
  const tmp = `${path}.${process.pid}.tmp`;
  await pipeline(createReadStream(tar), hashing(diff), createGzip({ level: 1 }), hashing(blob), createWriteStream(tmp));
  const size = (await stat(tmp)).size;
  const res: GzipResult = { digest: `sha256:${blob.digest("hex")}`, size, diffId: `sha256:${diff.digest("hex")}` };
  await rename(tmp, path);
  await writeFile(meta, JSON.stringify({ ...res, mtimeMs: st.mtimeMs, srcSize: st.size }));
  return { ...res, path };
}

/**
 * Pushes an ordinary (gzip, non-eStargz) OCI image made of the given layer tars to a registry,
 * through an OCI layout directory and `skopeo copy` — independent of lazypull's own client.
 */
export async function importImage(opts: {
  registryHost: string;
  repository: string;
  tag?: string;
  layers: ImportLayer[];
  config?: { Cmd?: string[]; Entrypoint?: string[]; Env?: string[]; WorkingDir?: string; User?: string };
}): Promise<ImportedImage> {
  const tag = opts.tag ?? "latest";
  const layout = await mkdtemp(join(tmpdir(), "lazypull-oci-"));
  try {
    const blobs = join(layout, "blobs", "sha256");
    await mkdir(blobs, { recursive: true });
    const layers: GzipResult[] = [];
    for (const l of opts.layers) {
      const g = await gzipCached(l.tar);
      await pipeline(createReadStream(g.path), createWriteStream(join(blobs, g.digest.slice(7))));
      layers.push({ digest: g.digest, size: g.size, diffId: g.diffId });
    }
    const putJson = async (value: unknown) => {
      const bytes = Buffer.from(JSON.stringify(value));
      const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
      await writeFile(join(blobs, digest.slice(7)), bytes);
      return { digest, size: bytes.length };
    };
    const config = await putJson({
      architecture: "amd64",
      os: "linux",
      created: "2026-01-01T00:00:00Z",
      config: { Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], Cmd: ["bash"], ...opts.config },
      rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
      history: layers.map(() => ({ created: "2026-01-01T00:00:00Z", created_by: "lazypull testkit import" })),
    });
    const manifest = await putJson({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
      layers: layers.map((l) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: l.digest, size: l.size })),
    });
    await writeFile(join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    await writeFile(
      join(layout, "index.json"),
      JSON.stringify({
        schemaVersion: 2,
        manifests: [
          {
            mediaType: "application/vnd.oci.image.manifest.v1+json",
            ...manifest,
            annotations: { "org.opencontainers.image.ref.name": tag },
          },
        ],
      }),
    );
    const ref = `${opts.registryHost}/${opts.repository}:${tag}`;
    await run("skopeo", ["copy", "--quiet", "--dest-tls-verify=false", `oci:${layout}:${tag}`, `docker://${ref}`]);
    return { ref, layers };
  } finally {
    await rm(layout, { recursive: true, force: true });
  }
}
