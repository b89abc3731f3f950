// Where each call goes and how: registries.conf's rewrites and mirrors (registries-conf.ts) give the sources
// to try in order; docker.io is served from registry-1.docker.io; and each host gets the scheme podman would
// use: verified HTTPS, or — for a registry that is insecure by configuration or flag — HTTPS without
// verification and then plain HTTP, or — for loopback — HTTPS and plain HTTP only when the server plainly
// speaks HTTP (never after a certificate error).
import { RegistryError } from "./errors.js";
import { isLoopbackRegistry, matchesInsecure } from "./insecure.js";
import { isInsecureHost, loadRegistriesConf, pullSources, type RegistriesConf } from "./registries-conf.js";
import type { Call } from "./transport.js";

export interface EndpointOptions {
  /** registries that may be reached without TLS verification or over plain HTTP (host[:port], `*.domain`) */
  insecureRegistries?: string[];
  /** containers-registries.conf(5) to read (default: $CONTAINERS_REGISTRIES_CONF, else /etc/containers/registries.conf); `false` reads none */
  registriesConf?: string | false;
  /** its drop-in directory (default /etc/containers/registries.conf.d); `false` reads none */
  registriesConfDir?: string | false;
  /** podman's `--tls-verify=false`: no registry's certificate is verified, and plain HTTP is allowed */
  tlsVerify?: boolean;
}

/** One place a call can be sent: a mirror or the (possibly rewritten) registry itself. */
export interface Source {
  registry: string;
  repository: string;
  mirror: boolean;
  insecure: boolean;
}

/** How a host is reached before its scheme is known. */
export type SchemePolicy =
  /** verified HTTPS, nothing else */
  | "https"
  /** HTTPS (unverified), then plain HTTP after any failure to connect: podman's insecure registries */
  | "https-then-http"
  /** HTTPS, then plain HTTP only when the server answered the handshake in plain HTTP: loopback */
  | "https-then-plain-http";

const EMPTY_CONF: RegistriesConf = {
  registries: [],
  unqualifiedSearchRegistries: [],
  shortNameMode: "permissive",
  aliases: {},
  credentialHelpers: ["containers-auth.json"],
  files: [],
};

/** The host that serves a registry name (docker.io's API is on registry-1.docker.io). */
export function hostOf(registry: string): string {
  return registry === "docker.io" ? "registry-1.docker.io" : registry;
}

export class Endpoints {
  private conf?: Promise<RegistriesConf>;
  private loaded: RegistriesConf = EMPTY_CONF;

  constructor(private readonly opts: EndpointOptions) {}

  /** registries.conf with its drop-ins, read once. */
  config(): Promise<RegistriesConf> {
    this.conf ??= (
      this.opts.registriesConf === false
        ? Promise.resolve(EMPTY_CONF)
        : loadRegistriesConf({
            ...(this.opts.registriesConf !== undefined ? { path: this.opts.registriesConf } : {}),
            ...(this.opts.registriesConfDir === false ? { dropInDir: "/nonexistent/lazypull-no-drop-ins" } : this.opts.registriesConfDir !== undefined ? { dropInDir: this.opts.registriesConfDir } : {}),
          })
    ).then((c) => (this.loaded = c));
    return this.conf;
  }

  /**
   * Where to send a call, in order. Reads (GET/HEAD) go to the mirrors registries.conf lists for the name, each
   * as its `pull-from-mirror` allows (a call that names a digest counts as by digest; blobs always do), then
   * to the registry (prefix rewrites applied); writes go to the registry the reference names, unrewritten.
   */
  async sources(call: Call): Promise<Source[]> {
    const conf = await this.config();
    if (call.repository === undefined) return [{ registry: call.registry, repository: "", mirror: false, insecure: this.isInsecure(call.registry) }];
    const read = call.method === "GET" || call.method === "HEAD";
    // a blocked registry is refused for writes too (pullSources throws REGISTRY_BLOCKED)
    const all = pullSources(conf, call.registry, call.repository, call.digest !== undefined);
    // writes go where the reference says: containers/image applies rewrites and mirrors to pulls only
    const list = read ? all : [{ registry: call.registry, repository: call.repository, mirror: false, insecure: false }];
    if (list.length === 0) {
      throw new RegistryError("REGISTRY_CONFIG_INVALID", `registries.conf leaves no place to send ${call.method} ${call.registry}/${call.repository}`, {
        registry: call.registry,
        repository: call.repository,
        files: conf.files,
      });
    }
    // a source's own `insecure` is its host's in registries.conf, which isInsecure reads (isInsecureHost)
    return list.map((s) => ({ registry: s.registry, repository: s.repository, mirror: s.mirror, insecure: this.isInsecure(s.registry) }));
  }

  /** Whether certificates of `host` (host[:port], as written in references) are verified. */
  verify(host: string): boolean {
    return !this.isInsecure(host);
  }

  schemePolicy(registry: string): SchemePolicy {
    if (this.isInsecure(registry)) return "https-then-http";
    if (isLoopbackRegistry(registry)) return "https-then-plain-http";
    return "https";
  }

  private isInsecure(registry: string): boolean {
    if (this.opts.tlsVerify === false) return true;
    if (matchesInsecure(registry, this.opts.insecureRegistries ?? [])) return true;
    return isInsecureHost(this.loaded, registry);
  }
}

/** The call as sent to `source`: its registry, repository, path and token scopes moved there. */
export function retarget(call: Call, source: Source): Call {
  if (call.repository === undefined || (source.registry === call.registry && source.repository === call.repository)) return call;
  const from = call.repository;
  const to = source.repository;
  const path = call.path.startsWith(`/v2/${from}/`) ? `/v2/${to}/${call.path.slice(`/v2/${from}/`.length)}` : call.path;
  const scopes = call.scopes.map((s) => (s.startsWith(`repository:${from}:`) ? `repository:${to}:${s.slice(`repository:${from}:`.length)}` : s));
  return { ...call, registry: source.registry, repository: to, path, scopes };
}
