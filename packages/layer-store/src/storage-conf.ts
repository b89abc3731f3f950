import { LayerStoreError } from "./errors.js";

/**
 * Editing containers-storage.conf(5) so podman uses the store: `additionallayerstores` in
 * `[storage.options]`. podman 4.3 (containers/storage 1.43) reads one file — `/etc/containers/storage.conf`,
 * else `/usr/share/containers/storage.conf` — with no drop-in directory, so setup edits that file in
 * place, inside one marked block; `remove` takes out exactly that block and nothing a person wrote.
 */
export const BLOCK_BEGIN = "# lazypull podman setup: begin (`lazypull podman remove` takes this block out)";
export const BLOCK_END = "# lazypull podman setup: end";

export interface StorageConfEdit {
  text: string;
  /** the lines added ("+ …") or removed ("- …"); empty when the file already says what we want */
  changes: string[];
}

/**
 * What a storage.conf must state when setup creates it: containers/storage refuses a file without
 * `runroot`/`graphroot`, so the created file writes out the values podman uses without one.
 */
export interface StorageDefaults {
  driver: string;
  graphRoot: string;
  runRoot: string;
}

/** The entry podman's storage.conf needs for a store at `dir` (`:ref`: lookups carry the image reference). */
export const storeEntry = (dir: string) => `${dir}:ref`;

const TABLE = /^\s*\[\s*([A-Za-z0-9_.-]+)\s*\]\s*(#.*)?$/;
const KEY = /^\s*additionallayerstores\s*=(.*)$/;
const toml = (s: string) => JSON.stringify(s);

/**
 * Adds `dir` as an Additional Layer Store to `text` (the file's content; undefined when it does not
 * exist yet, then `defaults` are written too). Refuses (STORAGE_CONF_CONFLICT) to rewrite a list of
 * stores someone else wrote.
 */
export function addLayerStore(text: string | undefined, dir: string, opts: { file?: string; defaults?: StorageDefaults } = {}): StorageConfEdit {
  const file = opts.file ?? "storage.conf";
  const key = `additionallayerstores = [${toml(storeEntry(dir))}]`;
  if (text === undefined) {
    const d = opts.defaults;
    const storage = d ? ["[storage]", `driver = ${toml(d.driver)}`, `graphroot = ${toml(d.graphRoot)}`, `runroot = ${toml(d.runRoot)}`, ""] : [];
    const block = [BLOCK_BEGIN, ...storage, "[storage.options]", key, BLOCK_END];
    return { text: `${block.join("\n")}\n`, changes: block.map((l) => `+ ${l}`) };
  }
  const lines = text.split("\n");
  const at = lines.findIndex((l) => TABLE.exec(l)?.[1] === "storage.options");
  if (at < 0) {
    const block = [BLOCK_BEGIN, "[storage.options]", key, BLOCK_END];
    const body = text.length === 0 || text.endsWith("\n") ? text : `${text}\n`;
    return { text: `${body}${block.join("\n")}\n`, changes: block.map((l) => `+ ${l}`) };
  }
  for (let i = at + 1; i < lines.length && !TABLE.test(lines[i]!); i++) {
    const m = KEY.exec(lines[i]!);
    if (!m) continue;
    if (m[1]!.includes(toml(storeEntry(dir)))) return { text, changes: [] };
    throw new LayerStoreError(
      "STORAGE_CONF_CONFLICT",
      `${file}:${i + 1} already sets additionallayerstores (${lines[i]!.trim()}); add ${toml(storeEntry(dir))} to that list yourself`,
      { file, line: i + 1 },
    );
  }
  const block = [BLOCK_BEGIN, key, BLOCK_END];
  lines.splice(at + 1, 0, ...block);
  return { text: lines.join("\n"), changes: block.map((l) => `+ ${l}`) };
}

/**
 * Takes out every block `addLayerStore` added. `empty` is true when nothing else is left (the file
 * was setup's own and can go).
 */
export function removeLayerStore(text: string): StorageConfEdit & { empty: boolean } {
  const kept: string[] = [];
  const changes: string[] = [];
  let inBlock = false;
  for (const line of text.split("\n")) {
    if (line === BLOCK_BEGIN) inBlock = true;
    if (inBlock) changes.push(`- ${line}`);
    else kept.push(line);
    if (line === BLOCK_END) inBlock = false;
  }
  const out = kept.join("\n");
  return { text: out, changes, empty: out.trim().length === 0 };
}
