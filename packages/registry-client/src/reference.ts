// Image references (`name[:tag][@digest]`) with docker.io's defaults, parsed once into a Reference.
import { RegistryError } from "./errors.js";
import type { ImageReference } from "./types.js";

const DOCKER_HUB = "docker.io";
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
// host[:port], where host is a DNS name, an IPv4 address or a bracketed IPv6 address
const DOMAIN = /^(?:\[[0-9a-fA-F:.]+\]|[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*)(?::[0-9]+)?$/;

/** A parsed, normalised image reference (`registry/repository[:tag][@digest]`). */
export class Reference implements ImageReference {
  constructor(
    readonly registry: string,
    readonly repository: string,
    readonly tag?: string,
    readonly digest?: string,
  ) {}

  /** what the registry API calls the reference: the digest when there is one, else the tag */
  get reference(): string {
    return this.digest ?? this.tag ?? "latest";
  }

  /** `registry/repository`, no tag or digest */
  get name(): string {
    return `${this.registry}/${this.repository}`;
  }

  withDigest(digest: string): Reference {
    return new Reference(this.registry, this.repository, this.tag, digest);
  }

  withTag(tag: string): Reference {
    return new Reference(this.registry, this.repository, tag, undefined);
  }

  toString(): string {
    return `${this.name}${this.tag ? `:${this.tag}` : ""}${this.digest ? `@${this.digest}` : ""}`;
  }

  toJSON(): string {
    return this.toString();
  }
}

function invalid(input: string, why: string): RegistryError {
  return new RegistryError("REFERENCE_INVALID", `invalid image reference "${input}": ${why}`, { reference: input });
}

export function isDigest(s: string): boolean {
  return DIGEST.test(s);
}

/**
 * Parses `name[:tag][@digest]` the way docker and podman do: a first component with a `.` or `:`, or
 * `localhost`, is a registry, otherwise the registry is docker.io; docker.io single names get `library/`;
 * with neither tag nor digest the tag is `latest`.
 */
export function parseReference(input: string): Reference {
  if (typeof input !== "string" || input.length === 0) throw invalid(String(input), "empty");
  let rest = input.trim();
  if (rest !== input) throw invalid(input, "surrounding whitespace");
  rest = rest.replace(/^docker:\/\//, "");
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw invalid(input, `bad digest "${digest}" (want sha256:<64 hex>)`);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw invalid(input, `bad tag "${tag}"`);
  }
  let registry = DOCKER_HUB;
  let repository = rest;
  const slash = rest.indexOf("/");
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes(".") || first.includes(":") || first.startsWith("[") || first === "localhost") {
      registry = first;
      repository = rest.slice(slash + 1);
    }
  }
  if (!DOMAIN.test(registry)) throw invalid(input, `bad registry "${registry}"`);
  if (registry === "index.docker.io" || registry === "registry-1.docker.io") registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && repository.length > 0 && !repository.includes("/")) repository = `library/${repository}`;
  if (repository.length === 0) throw invalid(input, "missing repository");
  if (repository.length > 255) throw invalid(input, "repository longer than 255 characters");
  for (const c of repository.split("/")) {
    if (!COMPONENT.test(c)) throw invalid(input, `bad repository component "${c}" (lowercase letters, digits, . _ - only)`);
  }
  if (!tag && !digest) tag = "latest";
  return new Reference(registry, repository, tag, digest);
}

/** Accepts either a string or an already-parsed reference. */
export function toReference(ref: ImageReference | string): Reference {
  if (typeof ref === "string") return parseReference(ref);
  if (ref instanceof Reference) return ref;
  return new Reference(ref.registry, ref.repository, ref.tag, ref.digest);
}
