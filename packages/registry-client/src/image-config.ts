// Checking that an image config has the OCI image spec's shape before anyone relies on its fields.
import { RegistryError, type RegistryErrorContext } from "./errors.js";
import type { ImageConfig } from "./types.js";

const DIGEST = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const kind = (v: unknown) => (v === undefined ? "missing" : v === null ? "null" : Array.isArray(v) ? "an array" : typeof v === "object" ? "an object" : `a ${typeof v}`);

/**
 * Checks an image config against the parts of the OCI image spec lazypull and podman act on, so a
 * config of the wrong shape fails here with the field named (IMAGE_CONFIG_INVALID), not later inside
 * runc. Unknown fields pass: the spec allows them.
 */
export function checkImageConfig(value: unknown, layers: number, where: string, ctx: RegistryErrorContext): ImageConfig {
  const bad = (field: string, want: string, got: unknown): never => {
    throw new RegistryError("IMAGE_CONFIG_INVALID", `${where}: ${field} must be ${want}, but it is ${kind(got)}`, { ...ctx, field });
  };
  if (!isObject(value)) return bad("the config", "a JSON object", value);
  const rootfs = value.rootfs;
  if (!isObject(rootfs)) return bad("rootfs", "an object", rootfs);
  if (rootfs.type !== "layers") bad("rootfs.type", '"layers"', rootfs.type);
  const ids = rootfs.diff_ids;
  if (!Array.isArray(ids) || !ids.every((d) => typeof d === "string" && DIGEST.test(d))) return bad("rootfs.diff_ids", "an array of digests", ids);
  if (ids.length !== layers) {
    throw new RegistryError("IMAGE_CONFIG_INVALID", `${where}: rootfs.diff_ids has ${ids.length} entries for the manifest's ${layers} layers`, { ...ctx, field: "rootfs.diff_ids" });
  }
  for (const f of ["architecture", "os", "variant", "created", "author"] as const) {
    if (value[f] !== undefined && typeof value[f] !== "string") bad(f, "a string", value[f]);
  }
  const c = value.config;
  if (c === undefined || c === null) return value as ImageConfig;
  if (!isObject(c)) return bad("config", "an object", c);
  const stringList = (f: string, nullable: boolean) => {
    const v = c[f];
    if (v === undefined || (nullable && v === null)) return;
    if (!Array.isArray(v) || !v.every((s) => typeof s === "string")) bad(`config.${f}`, `an array of strings${nullable ? " or null" : ""}`, v);
  };
  stringList("Env", true);
  stringList("Entrypoint", true);
  stringList("Cmd", true);
  for (const f of ["WorkingDir", "User", "StopSignal"]) {
    if (c[f] !== undefined && typeof c[f] !== "string") bad(`config.${f}`, "a string", c[f]);
  }
  if (Array.isArray(c.Env) && c.Env.some((e) => !(e as string).includes("="))) {
    throw new RegistryError("IMAGE_CONFIG_INVALID", `${where}: config.Env entries must be NAME=value`, { ...ctx, field: "config.Env" });
  }
  for (const f of ["ExposedPorts", "Volumes"]) {
    if (c[f] !== undefined && c[f] !== null && !isObject(c[f])) bad(`config.${f}`, "an object", c[f]);
  }
  const labels = c.Labels;
  if (labels !== undefined && labels !== null && !(isObject(labels) && Object.values(labels).every((l) => typeof l === "string"))) {
    bad("config.Labels", "an object of strings", labels);
  }
  return value as ImageConfig;
}
