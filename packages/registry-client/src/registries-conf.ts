// containers-registries.conf(5) v2 as podman 4.x reads it (containers/image pkg/sysregistriesv2 and
// pkg/shortnames): lazypull must pick the same registry entry, mirrors, rewrites and short-name candidates
// podman would, or a lazily pulled image could come from a different place than `podman pull` takes it from.
// Pure apart from loadRegistriesConf's file reads; nothing here prompts or touches the network.
import { access, readdir, readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { parse } from "smol-toml";
import { RegistryError } from "./errors.js";

export type PullFromMirror = "all" | "digest-only" | "tag-only";
export type ShortNameMode = "enforcing" | "permissive" | "disabled";

export interface MirrorEntry {
  location: string;
  insecure: boolean;
  pullFromMirror: PullFromMirror;
}

export interface RegistryEntry {
  /** normalised: `host[:port][/path]` or `*.domain` */
  prefix: string;
  /** where the prefix is rewritten to (defaults to prefix); empty only for a wildcard prefix: no rewrite */
  location: string;
  insecure: boolean;
  blocked: boolean;
  mirrors: MirrorEntry[];
  /** the file that defined this entry, for error messages */
  file: string;
}

export interface RegistriesConf {
  /** one entry per prefix, sorted by prefix (containers/image sorts too; it decides ties in findRegistry) */
  registries: RegistryEntry[];
  unqualifiedSearchRegistries: string[];
  shortNameMode: ShortNameMode;
  /** short name -> fully qualified name (normalised: `docker.io/library/x`) */
  aliases: Record<string, string>;
  /** top-level `credential-helpers`; default ["containers-auth.json"] */
  credentialHelpers: string[];
  /** every file that contributed, in the order read (for error messages and `lazypull` diagnostics) */
  files: string[];
}

/** What one file says; unset fields leave earlier files' values alone when layered. */
export interface RegistriesConfLayer {
  file: string;
  /** v1 files (`[registries.search]` …) are converted; drop-ins must be v2 */
  format: "v1" | "v2";
  /** deduplicated by prefix (the first of a file wins, as in containers/image) */
  registries: RegistryEntry[];
  unqualifiedSearchRegistries?: string[];
  shortNameMode?: ShortNameMode;
  credentialHelpers?: string[];
  /** an empty value un-sets an alias from an earlier file */
  aliases: Record<string, string>;
}

export interface LoadOptions {
  /**
   * main file; default: $CONTAINERS_REGISTRIES_CONF, else `~/.config/containers/registries.conf` when it
   * exists, else /etc/containers/registries.conf (containers/image's order, for root as for users)
   */
  path?: string;
  /**
   * the one drop-in dir to read; default: `/etc/containers/registries.conf.d` then
   * `~/.config/containers/registries.conf.d`, or only the latter when the user's own main file is used
   */
  dropInDir?: string;
  env?: NodeJS.ProcessEnv;
}

export interface PullSource {
  registry: string;
  repository: string;
  insecure: boolean;
  mirror: boolean;
}

const DEFAULT_CONF = "/etc/containers/registries.conf";
const DEFAULT_DROP_IN_DIR = "/etc/containers/registries.conf.d";
const AUTH_FILE_HELPER = "containers-auth.json";
const PULL_FROM_MIRROR: readonly string[] = ["all", "digest-only", "tag-only"];
const SHORT_NAME_MODES: readonly string[] = ["enforcing", "permissive", "disabled"];
// docker/distribution's reference grammar: a domain (host[:port], IPv6 in brackets) and path components
const DOMAIN = /^(?:\[[0-9a-fA-F:.]+\]|[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*)(?::[0-9]+)?$/;
const PATH = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;

type Table = Record<string, unknown>;

function invalid(file: string, message: string, context: Record<string, unknown> = {}, cause?: unknown): RegistryError {
  return new RegistryError("REGISTRY_CONFIG_INVALID", `${file}: ${message}`, { file, ...context }, cause === undefined ? undefined : { cause });
}

/** TOML text -> table, with syntax errors as REGISTRY_CONFIG_INVALID naming the file. */
function parseTomlFile(text: string, file: string): Table {
  try {
    return parse(text);
  } catch (cause) {
    throw invalid(file, `not valid TOML: ${(cause as Error).message}`, {}, cause);
  }
}

function isTable(v: unknown): v is Table {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

// Typed field access: containers/image's TOML decoder refuses a wrong type, so do we.
function optString(t: Table, key: string, file: string, where: string, ctx: Record<string, unknown> = {}): string | undefined {
  const v = t[key];
  if (v === undefined) return undefined;
  if (typeof v !== "string") throw invalid(file, `${where}\`${key}\` must be a string`, ctx);
  return v;
}

function optBool(t: Table, key: string, file: string, where: string, ctx: Record<string, unknown> = {}): boolean {
  const v = t[key];
  if (v === undefined) return false;
  if (typeof v !== "boolean") throw invalid(file, `${where}\`${key}\` must be true or false`, ctx);
  return v;
}

function optStrings(t: Table, key: string, file: string, where = ""): string[] | undefined {
  const v = t[key];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((s) => typeof s !== "string")) throw invalid(file, `${where}\`${key}\` must be an array of strings`);
  return v as string[];
}

function optTable(t: Table, key: string, file: string): Table | undefined {
  const v = t[key];
  if (v === undefined) return undefined;
  if (!isTable(v)) throw invalid(file, `\`${key}\` must be a table`);
  return v;
}

// Like containers/image's parseLocation: trailing slashes go, URL schemes are refused (the transport picks
// https or http from `insecure`, never from the location).
function parseLocation(raw: string, file: string, ctx: Record<string, unknown>): string {
  const trimmed = raw.replace(/\/+$/, "");
  if (/^https?:\/\//.test(trimmed)) throw invalid(file, `invalid location "${raw}": URI schemes are not supported`, ctx);
  return trimmed;
}

function splitHostPort(hostPort: string): string {
  if (hostPort.startsWith("[")) return hostPort.slice(0, hostPort.indexOf("]") + 1);
  const colon = hostPort.lastIndexOf(":");
  return colon < 0 ? hostPort : hostPort.slice(0, colon);
}

function hostPart(name: string): string {
  const slash = name.indexOf("/");
  return slash < 0 ? name : name.slice(0, slash);
}

/** Splits `name[:tag][@digest]`; the tag colon is the one after the last `/` (a port's is before it). */
function splitTagDigest(ref: string): { name: string; tag?: string; digest?: string } {
  let name = ref;
  let digest: string | undefined;
  const at = name.indexOf("@");
  if (at >= 0) {
    digest = name.slice(at + 1);
    name = name.slice(0, at);
  }
  let tag: string | undefined;
  const colon = name.lastIndexOf(":");
  if (colon > name.lastIndexOf("/")) {
    tag = name.slice(colon + 1);
    name = name.slice(0, colon);
  }
  return { name, ...(tag === undefined ? {} : { tag }), ...(digest === undefined ? {} : { digest }) };
}

/**
 * A short name has no registry component: its first `/`-separated component (if there is a `/` at all) has
 * no `.` or `:` and is not `localhost` — docker's reference rule, which podman's shortnames.IsShortName uses.
 * A tag or digest does not make a name qualified.
 */
export function isShortName(name: string): boolean {
  const slash = name.indexOf("/");
  if (slash < 0) return true;
  const first = name.slice(0, slash);
  return !(first.includes(".") || first.includes(":") || first === "localhost");
}

// docker.io's normalisation, as reference.ParseNormalizedNamed does for aliases and search candidates.
function normaliseDockerHub(name: string): string {
  const slash = name.indexOf("/");
  let host = name.slice(0, slash);
  const path = name.slice(slash + 1);
  if (host === "index.docker.io") host = "docker.io";
  return host === "docker.io" && !path.includes("/") ? `${host}/library/${path}` : `${host}/${path}`;
}

function parseAliases(table: Table, file: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(table)) {
    const ctx = { alias: key };
    if (typeof value !== "string") throw invalid(file, `alias "${key}" must map to a string`, ctx);
    const k = splitTagDigest(key);
    if (k.tag !== undefined || k.digest !== undefined || !PATH.test(k.name) || !isShortName(key)) {
      throw invalid(file, `invalid short name "${key}" in [aliases]: want a name without registry, tag or digest`, ctx);
    }
    if (value === "") {
      out[key] = "";
      continue;
    }
    const v = splitTagDigest(value);
    const slash = v.name.indexOf("/");
    if (v.tag !== undefined || v.digest !== undefined || isShortName(v.name) || slash < 0 || !DOMAIN.test(v.name.slice(0, slash)) || !PATH.test(v.name.slice(slash + 1))) {
      throw invalid(file, `invalid alias "${key}" = "${value}": want registry/repository without tag or digest`, ctx);
    }
    out[key] = normaliseDockerHub(value);
  }
  return out;
}

function parseMirror(raw: unknown, file: string, prefix: string, digestOnly: boolean): MirrorEntry {
  const ctx = { prefix };
  if (!isTable(raw)) throw invalid(file, `[[registry.mirror]] of "${prefix}" must be a table`, ctx);
  const where = `[[registry.mirror]] of "${prefix}": `;
  const location = parseLocation(optString(raw, "location", file, where, ctx) ?? "", file, ctx);
  if (location === "") throw invalid(file, `${where}mirror location is unset`, ctx);
  const pfm = optString(raw, "pull-from-mirror", file, where, ctx);
  if (pfm !== undefined && pfm !== "" && !PULL_FROM_MIRROR.includes(pfm)) {
    throw invalid(file, `${where}unsupported pull-from-mirror value "${pfm}" for mirror "${location}" (want all, digest-only or tag-only)`, ctx);
  }
  if (digestOnly && pfm !== undefined && pfm !== "") {
    throw invalid(file, `${where}mirror-by-digest-only and pull-from-mirror cannot both be set (mirror "${location}")`, ctx);
  }
  // the deprecated registry-wide flag is the same as digest-only on each of its mirrors
  const pullFromMirror = (digestOnly ? "digest-only" : pfm || "all") as PullFromMirror;
  return { location, insecure: optBool(raw, "insecure", file, where, ctx), pullFromMirror };
}

function parseRegistry(raw: unknown, file: string, index: number): RegistryEntry {
  if (!isTable(raw)) throw invalid(file, `[[registry]] #${index + 1} must be a table`);
  const rawPrefix = optString(raw, "prefix", file, `[[registry]] #${index + 1}: `) ?? "";
  const rawLocation = optString(raw, "location", file, `[[registry]] #${index + 1}: `) ?? "";
  const name = rawPrefix || rawLocation || `#${index + 1}`;
  const ctx = { prefix: name };
  const where = `[[registry]] "${name}": `;
  const location = parseLocation(rawLocation, file, ctx);
  let prefix: string;
  if (rawPrefix === "") {
    if (location === "") throw invalid(file, `${where}both location and prefix are unset`, ctx);
    prefix = location;
  } else {
    prefix = parseLocation(rawPrefix, file, ctx);
    if (!prefix.startsWith("*.") && location === "") throw invalid(file, `${where}location is unset and the prefix is not of the form *.example.com`, ctx);
  }
  // containers/image allows a location beside a wildcard prefix (it rewrites the host), so we do too
  if (prefix.startsWith("*.") && /[/@:]/.test(prefix)) {
    throw invalid(file, `${where}a wildcard prefix must be of the form *.example.com (no port, path, tag or digest)`, { prefix });
  }
  if ((optString(raw, "pull-from-mirror", file, where, ctx) ?? "") !== "") {
    throw invalid(file, `${where}pull-from-mirror is only for [[registry.mirror]], not the registry itself`, { prefix });
  }
  const digestOnly = optBool(raw, "mirror-by-digest-only", file, where, { prefix });
  const rawMirrors = raw.mirror;
  if (rawMirrors !== undefined && !Array.isArray(rawMirrors)) throw invalid(file, `${where}\`mirror\` must be an array of tables ([[registry.mirror]])`, { prefix });
  const mirrors = (rawMirrors ?? []).map((m: unknown) => parseMirror(m, file, prefix, digestOnly));
  return { prefix, location, insecure: optBool(raw, "insecure", file, where, { prefix }), blocked: optBool(raw, "blocked", file, where, { prefix }), mirrors, file };
}

// sysregistriesv2's ConvertToV2: one entry per location (prefix = location), blocked ones first, in the
// order they first appear; the search list becomes unqualified-search-registries.
function convertV1(v1: { search: string[] | undefined; insecure: string[] | undefined; block: string[] | undefined }): { registry: Table[]; search?: string[] } {
  const byLocation = new Map<string, Table>();
  const entry = (raw: string): Table => {
    // keyed after parseLocation's trim, so `reg.io/` and `reg.io` are one registry
    const location = raw.replace(/\/+$/, "");
    let t = byLocation.get(location);
    if (!t) {
      t = { location };
      byLocation.set(location, t);
    }
    return t;
  };
  for (const loc of v1.block ?? []) entry(loc).blocked = true;
  for (const loc of v1.insecure ?? []) entry(loc).insecure = true;
  return { registry: [...byLocation.values()], ...(v1.search ? { search: v1.search } : {}) };
}

/**
 * One file -> one layer (validated; see RegistriesConfLayer). Throws REGISTRY_CONFIG_INVALID naming the file
 * (and the entry's prefix) for bad TOML, bad values, or a file mixing v1 and v2 syntax.
 */
export function parseRegistriesConf(text: string, file: string): RegistriesConfLayer {
  const doc = parseTomlFile(text, file);

  // As containers/image decides: v1 is set when any of the three `registries` lists is present (even
  // empty); v2 when any v2 key is present (an empty short-name-mode counts as absent).
  const v1Table = optTable(doc, "registries", file);
  const v1List = (kind: "search" | "insecure" | "block"): string[] | undefined => {
    const sub = v1Table && optTable(v1Table, kind, file);
    return sub && optStrings(sub, "registries", file, `[registries.${kind}] `);
  };
  const v1 = { search: v1List("search"), insecure: v1List("insecure"), block: v1List("block") };
  const isV1 = v1.search !== undefined || v1.insecure !== undefined || v1.block !== undefined;
  const isV2 =
    doc.registry !== undefined ||
    doc["unqualified-search-registries"] !== undefined ||
    doc["credential-helpers"] !== undefined ||
    doc.aliases !== undefined ||
    doc["additional-layer-store-auth-helper"] !== undefined ||
    (doc["short-name-mode"] !== undefined && doc["short-name-mode"] !== "");
  if (isV1 && isV2) {
    throw invalid(file, "mixing sysregistry v1 ([registries.search|insecure|block]) and v2 ([[registry]], unqualified-search-registries, …) is not supported");
  }

  let rawRegistries: unknown;
  let search: string[] | undefined;
  if (isV1) {
    const converted = convertV1(v1);
    rawRegistries = converted.registry;
    search = converted.search;
  } else {
    rawRegistries = doc.registry;
    search = optStrings(doc, "unqualified-search-registries", file);
  }
  if (rawRegistries !== undefined && !Array.isArray(rawRegistries)) throw invalid(file, "`registry` must be an array of tables ([[registry]])");
  const all = ((rawRegistries ?? []) as unknown[]).map((r, i) => parseRegistry(r, file, i));

  // The same registry named twice (several prefixes on one location) must agree on insecure and blocked.
  const byKey = new Map<string, RegistryEntry>();
  for (const r of all) {
    const key = r.location || r.prefix;
    const first = byKey.get(key);
    if (!first) byKey.set(key, r);
    else if (first.insecure !== r.insecure || first.blocked !== r.blocked) {
      throw invalid(file, `registry "${key}" is defined more than once with conflicting '${first.insecure !== r.insecure ? "insecure" : "blocked"}' settings`, { prefix: r.prefix });
    }
  }
  // containers/image keeps the first entry of a prefix within one file and ignores later ones
  const byPrefix = new Map<string, RegistryEntry>();
  for (const r of all) if (!byPrefix.has(r.prefix)) byPrefix.set(r.prefix, r);

  const layer: RegistriesConfLayer = { file, format: isV1 ? "v1" : "v2", registries: [...byPrefix.values()], aliases: {} };
  if (search !== undefined) {
    layer.unqualifiedSearchRegistries = search.map((s) => {
      const reg = parseLocation(s, file, { registry: s });
      if (!DOMAIN.test(reg)) throw invalid(file, `invalid unqualified-search-registries entry "${s}": want host[:port]`, { registry: s });
      return reg;
    });
  }
  const mode = optString(doc, "short-name-mode", file, "");
  if (mode !== undefined && mode !== "") {
    if (!SHORT_NAME_MODES.includes(mode)) throw invalid(file, `invalid short-name-mode "${mode}" (want enforcing, permissive or disabled)`);
    layer.shortNameMode = mode as ShortNameMode;
  }
  const helpers = optStrings(doc, "credential-helpers", file);
  if (helpers !== undefined) layer.credentialHelpers = helpers;
  const aliases = optTable(doc, "aliases", file);
  if (aliases) layer.aliases = parseAliases(aliases, file);
  return layer;
}

/** Layers in order: later files replace entries with the same prefix and any top-level key they set. */
export function mergeRegistriesConf(layers: readonly RegistriesConfLayer[]): RegistriesConf {
  const registries = new Map<string, RegistryEntry>();
  let search: string[] = [];
  let mode: ShortNameMode | undefined;
  let helpers: string[] | undefined;
  const aliases: Record<string, string> = {};
  for (const layer of layers) {
    for (const r of layer.registries) registries.set(r.prefix, r);
    if (layer.unqualifiedSearchRegistries !== undefined) search = layer.unqualifiedSearchRegistries;
    if (layer.shortNameMode !== undefined) mode = layer.shortNameMode;
    if (layer.credentialHelpers !== undefined) helpers = layer.credentialHelpers;
    Object.assign(aliases, layer.aliases);
  }
  for (const [k, v] of Object.entries(aliases)) if (v === "") delete aliases[k];
  return {
    // byte order, as Go's sort.Strings: findRegistry's tie-break depends on it
    registries: [...registries.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map((p) => registries.get(p)!),
    unqualifiedSearchRegistries: search,
    shortNameMode: mode ?? "permissive",
    aliases,
    credentialHelpers: helpers && helpers.length > 0 ? helpers : [AUTH_FILE_HELPER],
    files: layers.map((l) => l.file),
  };
}

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

async function readable(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * The main file, then the drop-in dir's `*.conf` files in lexical order, each layered on the previous.
 *
 * As podman (containers/common's libimage, containers/image's newConfigWrapper): CONTAINERS_REGISTRIES_CONF
 * (or the legacy REGISTRIES_CONFIG_PATH) replaces only the main file — the drop-in dir is still read — and a
 * main file chosen explicitly (env or `path`) must exist, while a missing default file is an empty config.
 * A user's `~/.config/containers/registries.conf`, when it exists, replaces the system file and drop-in dir;
 * `~/.config/containers/registries.conf.d` is read after the system drop-ins. Drop-ins must be v2. Not done
 * here: podman's ~/.cache short-name-aliases.conf.
 */
export async function loadRegistriesConf(opts: LoadOptions = {}): Promise<RegistriesConf> {
  const env = opts.env ?? process.env;
  const explicit = opts.path || env.CONTAINERS_REGISTRIES_CONF || env.REGISTRIES_CONFIG_PATH || undefined;
  // containers/image (sysregistriesv2 newConfigWrapperWithHomeDir): a user's own registries.conf replaces the
  // system file and its drop-ins, and the user's drop-in dir is read after the system one either way
  const userDir = join(env.HOME || homedir(), ".config", "containers");
  const userFile = explicit === undefined ? join(userDir, "registries.conf") : undefined;
  const useUserFile = userFile !== undefined && (await readable(userFile));
  const main = explicit ?? (useUserFile ? userFile : DEFAULT_CONF);
  const dirs = opts.dropInDir !== undefined ? [opts.dropInDir] : useUserFile ? [join(userDir, "registries.conf.d")] : [DEFAULT_DROP_IN_DIR, join(userDir, "registries.conf.d")];
  const layers: RegistriesConfLayer[] = [];

  let text: string | undefined;
  try {
    text = await readFile(main, "utf8");
  } catch (cause) {
    if (errno(cause) !== "ENOENT" || explicit !== undefined) {
      throw invalid(main, `cannot read registries configuration: ${(cause as Error).message}`, {}, cause);
    }
  }
  if (text !== undefined) layers.push(parseRegistriesConf(text, main));

  const paths: string[] = [];
  for (const dir of dirs) {
    let names: string[] = [];
    try {
      const entries = await readdir(dir, { withFileTypes: true });
      // top level only, as containers/image's walk skips sub-directories
      names = entries.filter((e) => !e.isDirectory() && e.name.endsWith(".conf")).map((e) => e.name);
    } catch (cause) {
      if (errno(cause) !== "ENOENT") throw invalid(dir, `cannot read drop-in directory: ${(cause as Error).message}`, {}, cause);
    }
    names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    paths.push(...names.map((n) => join(dir, n)));
  }
  for (const path of paths) {
    let dropIn: string;
    try {
      dropIn = await readFile(path, "utf8");
    } catch (cause) {
      throw invalid(path, `cannot read drop-in: ${(cause as Error).message}`, {}, cause);
    }
    const layer = parseRegistriesConf(dropIn, path);
    if (layer.format === "v1") throw invalid(path, "a drop-in must be in the v2 format ([[registry]]), not v1 ([registries.search|insecure|block])");
    layers.push(layer);
  }
  return mergeRegistriesConf(layers);
}

/**
 * The length of `name` that `prefix` covers, or -1. Non-wildcard prefixes match on whole components: `/`
 * after the prefix, or `:`/`@` (tag, digest) once the prefix is past the host. containers/image also lets
 * `:` follow a host-only prefix, so `example.com` matches `example.com:5000/x`; its own comment calls that
 * unintended, and we do not copy it. Wildcards match the host (any depth of subdomain, any port).
 */
function matchPrefix(name: string, prefix: string): number {
  if (prefix.startsWith("*.")) {
    const hostPort = hostPart(name);
    return splitHostPort(hostPort).endsWith(prefix.slice(1)) ? hostPort.length : -1;
  }
  if (name === prefix) return prefix.length;
  if (!name.startsWith(prefix)) return -1;
  const c = name[prefix.length];
  if (c === "/" || c === "@" || (c === ":" && prefix.includes("/"))) return prefix.length;
  return -1;
}

/**
 * The entry for `name` (`host[:port]/repo/path`, optionally with `:tag`/`@digest`): the longest matching
 * prefix, counted in characters with the `*.` of a wildcard — containers/image's rule. So a longer exact
 * prefix beats a wildcard, and on equal length (`a.example.com` vs `*.example.com`) the first in prefix order
 * wins, which is the wildcard, as in podman.
 */
export function findRegistry(conf: RegistriesConf, name: string): RegistryEntry | undefined {
  let best: RegistryEntry | undefined;
  for (const r of conf.registries) {
    if (matchPrefix(name, r.prefix) >= 0 && r.prefix.length > (best?.prefix.length ?? 0)) best = r;
  }
  return best;
}

/**
 * Where to pull `registry/repository` from, in order: the matching entry's mirrors that apply (digest-only
 * ones only when `byDigest`, tag-only ones only when not), then its location; each with the prefix rewritten
 * (prefix `example.com/foo`, location `internal:5000/bar`: `example.com/foo/app` -> `internal:5000` + `bar/app`).
 * No entry: the name itself. A blocked entry throws REGISTRY_BLOCKED before anything is tried. The name is
 * matched without tag or digest, so prefixes that pin one do not apply here.
 */
export function pullSources(conf: RegistriesConf, registry: string, repository: string, byDigest: boolean): PullSource[] {
  const name = `${registry}/${repository}`;
  const entry = findRegistry(conf, name);
  if (!entry) return [{ registry, repository, insecure: false, mirror: false }];
  if (entry.blocked) {
    throw new RegistryError("REGISTRY_BLOCKED", `registry ${entry.prefix} is blocked in ${entry.file} (pulling ${name})`, {
      registry,
      repository,
      prefix: entry.prefix,
      file: entry.file,
    });
  }
  const matched = matchPrefix(name, entry.prefix);
  const source = (location: string, insecure: boolean, mirror: boolean): PullSource => {
    // an empty location (wildcard prefix) keeps the name as it is
    const rewritten = location === "" ? name : location + name.slice(matched);
    const slash = rewritten.indexOf("/");
    if (slash <= 0 || slash === rewritten.length - 1) {
      throw invalid(entry.file, `[[registry]] "${entry.prefix}": rewriting ${name} with location "${location}" leaves no repository ("${rewritten}")`, {
        prefix: entry.prefix,
      });
    }
    return { registry: rewritten.slice(0, slash), repository: rewritten.slice(slash + 1), insecure, mirror };
  };
  const out: PullSource[] = [];
  for (const m of entry.mirrors) {
    if (m.pullFromMirror === "digest-only" && !byDigest) continue;
    if (m.pullFromMirror === "tag-only" && byDigest) continue;
    out.push(source(m.location, m.insecure, true));
  }
  out.push(source(entry.location, entry.insecure, false));
  return out;
}

/**
 * Fully qualified names to try for `name`, in order, as podman's shortnames.Resolve without a TTY:
 * - not a short name: `[name]` unchanged;
 * - an alias: just its target, with `name`'s tag and digest carried over;
 * - else each unqualified-search registry + `/` + name (`docker.io` one-component names get `library/`);
 * - no search registries: `[]` (podman errors here; our caller falls back to docker.io).
 * With `short-name-mode = "enforcing"` and more than one candidate podman prompts on a TTY and fails
 * otherwise; lazypull never prompts, so that is always REFERENCE_AMBIGUOUS. In permissive and disabled mode
 * all candidates come back and lazypull tries them in order, as podman does without a TTY.
 */
export function shortNameCandidates(conf: RegistriesConf, name: string): string[] {
  if (!isShortName(name)) return [name];
  const { name: repo, tag, digest } = splitTagDigest(name);
  if (!PATH.test(repo) || (tag !== undefined && !TAG.test(tag)) || (digest !== undefined && !DIGEST.test(digest))) {
    throw new RegistryError("REFERENCE_INVALID", `invalid image reference "${name}"`, { reference: name });
  }
  const suffix = `${tag === undefined ? "" : `:${tag}`}${digest === undefined ? "" : `@${digest}`}`;
  const alias = conf.aliases[repo];
  if (alias) return [alias + suffix];
  const candidates = conf.unqualifiedSearchRegistries.map((reg) => normaliseDockerHub(`${reg}/${repo}`) + suffix);
  if (conf.shortNameMode === "enforcing" && candidates.length > 1) {
    throw new RegistryError(
      "REFERENCE_AMBIGUOUS",
      `short name "${name}" could be any of ${candidates.join(", ")} and short-name-mode is "enforcing" (${conf.files.join(", ")}); ` +
        "podman would prompt, lazypull does not: use a fully qualified name or add an [aliases] entry",
      { reference: name, candidates, files: conf.files },
    );
  }
  return candidates;
}

/**
 * Whether connections to `hostPort` may be plain HTTP / unverified TLS: some insecure entry or mirror has a
 * location on that host[:port], or an insecure entry's wildcard prefix covers it.
 */
export function isInsecureHost(conf: RegistriesConf, hostPort: string): boolean {
  for (const r of conf.registries) {
    if (r.insecure) {
      if (r.location !== "" && hostPart(r.location) === hostPort) return true;
      if (r.prefix.startsWith("*.") && matchPrefix(hostPort, r.prefix) >= 0) return true;
    }
    for (const m of r.mirrors) if (m.insecure && hostPart(m.location) === hostPort) return true;
  }
  return false;
}
