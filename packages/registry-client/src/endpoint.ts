// Where a registry name is reached: docker.io is served from registry-1.docker.io, and plain HTTP is used for
// loopback and for registries marked insecure (the option, or registries.conf read once), HTTPS otherwise.
import { isLoopbackRegistry, matchesInsecure, readInsecureRegistries } from "./insecure.js";

export interface EndpointOptions {
  insecureRegistries?: string[];
  /** a registries.conf path, or `false` to read none (default /etc/containers/registries.conf) */
  registriesConf?: string | false;
}

/** `(registry) => "https://host"` or `"http://host"`. */
export function baseUrlResolver(opts: EndpointOptions): (registry: string) => Promise<string> {
  let fromConf: Promise<string[]> | undefined;
  return async (registry) => {
    const host = registry === "docker.io" ? "registry-1.docker.io" : registry;
    if (isLoopbackRegistry(registry)) return `http://${host}`;
    if (matchesInsecure(registry, opts.insecureRegistries ?? [])) return `http://${host}`;
    if (opts.registriesConf !== false) {
      fromConf ??= readInsecureRegistries(opts.registriesConf ?? "/etc/containers/registries.conf");
      if (matchesInsecure(registry, await fromConf)) return `http://${host}`;
    }
    return `https://${host}`;
  };
}
