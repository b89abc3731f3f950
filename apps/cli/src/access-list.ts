import { readFile, writeFile } from "node:fs/promises";

/**
 * fuse-fs records first reads per layer (`<layer-hex>/<path>`); `convert --prioritize` wants image
 * paths. Turn one into the other, keeping first-read order and dropping repeats (the same path read
 * through two layers is one file of the image).
 */
export function layerAccessesToImagePaths(text: string): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const m = /^[0-9a-f]{64}\/(.*)$/.exec(line.trim());
    const path = m ? m[1] : undefined;
    if (!path || seen.has(path)) continue;
    seen.add(path);
    out.push(path);
  }
  return out;
}

export async function writeImageAccessList(layerLog: string, target: string): Promise<number> {
  const text = await readFile(layerLog, "utf8").catch(() => "");
  const paths = layerAccessesToImagePaths(text);
  await writeFile(target, paths.map((p) => `${p}\n`).join(""));
  return paths.length;
}
