/**
 * Paths inside the store, as containers/storage's overlay driver builds them:
 * `/<base64(reference)>/<digest>/{diff,info,blob}`, plus the `use` file it creates to say it uses a
 * layer. The reference is podman's normalized form (`127.0.0.1:5000/lazy/debian:esgz`,
 * `docker.io/library/debian:12`), base64 with the standard alphabet and padding.
 */
export type StorePath =
  | { kind: "root" }
  /**
   * A directory on the way to a layer. base64's alphabet has "/", and containers/storage joins the
   * encoded reference into the path as it is, so one reference may span several directories.
   */
  | { kind: "image"; encoded: string }
  | { kind: "layer"; reference: string; digest: string }
  | { kind: "file"; reference: string; digest: string; name: LayerFile }
  | { kind: "use"; reference: string; digest: string };

export const LAYER_FILES = ["diff", "info", "blob"] as const;
export type LayerFile = (typeof LAYER_FILES)[number];

// sha256 only: the digests podman asks for are blob or TOC digests of registry layers
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const BASE64_PART = /^[A-Za-z0-9+]+={0,2}$/;
// a reference has no control characters or spaces; anything else is not a name podman would make
const REFERENCE = /^[\x21-\x7e]+$/;

export function encodeReference(reference: string): string {
  return Buffer.from(reference, "utf8").toString("base64");
}

/** The reference a directory name encodes, or undefined when it is not one (bad base64, or not round-tripping). */
export function decodeReference(name: string): string | undefined {
  if (!BASE64.test(name) || name.length % 4 !== 0) return undefined;
  const reference = Buffer.from(name, "base64").toString("utf8");
  if (!REFERENCE.test(reference) || encodeReference(reference) !== name) return undefined;
  return reference;
}

/** What a FUSE path names, or undefined for anything outside the store's shape. */
export function parseStorePath(path: string): StorePath | undefined {
  if (path === "/") return { kind: "root" };
  const parts = path.split("/").slice(1);
  const at = parts.findIndex((p) => DIGEST.test(p));
  if (at < 0) {
    const encoded = parts.join("/");
    return parts.every((p) => BASE64_PART.test(p)) && /^[^=]*={0,2}$/.test(encoded) ? { kind: "image", encoded } : undefined;
  }
  const reference = decodeReference(parts.slice(0, at).join("/"));
  if (reference === undefined) return undefined;
  const digest = parts[at]!;
  const rest = parts.slice(at + 1);
  if (rest.length === 0) return { kind: "layer", reference, digest };
  if (rest.length !== 1) return undefined;
  const name = rest[0]!;
  if (name === "use") return { kind: "use", reference, digest };
  return (LAYER_FILES as readonly string[]).includes(name) ? { kind: "file", reference, digest, name: name as LayerFile } : undefined;
}
