import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { mountsUnder as hostMountsUnder } from "@lazypull/host";
import { convertImage } from "@lazypull/image-convert";
import { RegistryClient } from "@lazypull/registry-client";
import { importImage, run } from "@lazypull/testkit";

/** Mount points at or under `root`. */
export async function mountsUnder(root: string): Promise<string[]> {
  return (await hostMountsUnder(root)).map((m) => m.mountPoint);
}

export interface SmallImage {
  /** the converted eStargz image */
  ref: string;
  /** layer-relative file contents, by layer index (bottom first) */
  files: Map<string, Buffer>[];
}

/**
 * A small two-layer image (a few MB of incompressible files, so fetched bytes track read bytes)
 * made with `tar`, imported as an ordinary gzip image and converted to eStargz with 64 KiB chunks.
 */
export async function buildSmallImage(work: string, registryHost: string, fileCount = 12, fileSize = 200_000, name = "small"): Promise<SmallImage> {
  const files: Map<string, Buffer>[] = [new Map(), new Map()];
  for (const [i, layer] of files.entries()) {
    const dir = join(work, `l${i}`);
    await mkdir(join(dir, "data"), { recursive: true });
    await mkdir(join(dir, "etc"), { recursive: true });
    for (let f = 0; f < fileCount / 2; f++) {
      const bytes = randomBytes(fileSize);
      layer.set(`data/l${i}-f${f}.bin`, bytes);
      await writeFile(join(dir, "data", `l${i}-f${f}.bin`), bytes);
    }
    const text = Buffer.from(`layer ${i}\n`);
    layer.set(`etc/layer-${i}`, text);
    await writeFile(join(dir, "etc", `layer-${i}`), text);
    await run("tar", ["--numeric-owner", "-C", dir, "-cf", join(work, `l${i}.tar`), "."]);
  }
  const img = await importImage({
    registryHost,
    repository: `src/${name}`,
    tag: "v1",
    layers: files.map((_, i) => ({ tar: join(work, `l${i}.tar`) })),
    config: { Cmd: ["/bin/true"] },
  });
  const client = new RegistryClient();
  try {
    const ref = `${registryHost}/lazy/${name}:v1`;
    await convertImage({ client, source: img.ref, destination: ref, chunkSize: 64 * 1024 });
    return { ref, files };
  } finally {
    await client.close();
  }
}
