// Registry TLS as podman configures it (containers/image docker/docker_client.go `dockerCertDir` and
// pkg/tlsclientconfig `SetupCertificates`), applied per connection through an undici connector.
//
// What containers/image does, and this file follows:
// - dockerCertDir: `--cert-dir` (SystemContext.DockerCertPath) is used as is, for every registry. Otherwise
//   the bases $HOME/.config/containers/certs.d, /etc/containers/certs.d, /etc/docker/certs.d are tried in that
//   order (the home one for root too: it is `homedir.Get()`, not gated on the uid) and the FIRST existing
//   `<base>/<host[:port]>` wins — the others are not read at all, so nothing merges across bases. A missing or
//   unreadable (EACCES) candidate is skipped; any other stat error fails the pull.
// - hostPort is the registry as written in the image reference (`reference.Domain`), so `host` and
//   `host:443` are different dirs. A connector only sees the URL, where the default port is dropped, so
//   here port 443 always means `<base>/<host>`.
// - SetupCertificates reads the dir in name order (os.ReadDir sorts): every `*.crt` is PEM appended to the
//   system pool (unparsable blocks silently skipped, as AppendCertsFromPEM does); every `*.cert` needs
//   `<same name>.key` and every `*.key` needs `<same name>.cert`, else an error; each pair must load.
//   A missing or unreadable dir means no extra configuration. InsecureSkipVerify is set afterwards, so
//   client certificates are still sent when verification is off.
import { X509Certificate } from "node:crypto";
import { createSecureContext, rootCertificates } from "node:tls";
import { readFileSync } from "node:fs";
import { readFile, readdir, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import type { Socket } from "node:net";
import { buildConnector } from "undici";
import { RegistryError } from "./errors.js";
import type { PlainSpares } from "./plain-spares.js";

export interface TlsSettings {
  /** podman's --cert-dir: use this directory (for every registry) instead of the certs.d lookup */
  certDir?: string;
  /** certs.d bases searched in order for `<base>/<host[:port]>/`; default: $HOME/.config/containers/certs.d, /etc/containers/certs.d, /etc/docker/certs.d */
  certsDirs?: string[];
  /** false = do not verify certificates (podman --tls-verify=false, or an insecure registry); per host */
  verify(hostPort: string): boolean;
}

export interface HostTls {
  /** the trust store when the dir has `*.crt` files: Node's default roots plus those (undefined = Node's default) */
  ca?: string[];
  /** client certificate and its key (PEM), from the first `*.cert`/`*.key` pair */
  cert?: string;
  key?: string;
  rejectUnauthorized: boolean;
  /** dir the files came from, for error messages */
  source?: string;
}

/** containers/image's bases, in its order. */
export function defaultCertsDirs(): string[] {
  return [join(homedir(), ".config/containers/certs.d"), "/etc/containers/certs.d", "/etc/docker/certs.d"];
}

function errCode(err: unknown): unknown {
  return (err as { code?: unknown } | null)?.code;
}

function configError(registry: string, file: string, message: string, cause?: unknown): RegistryError {
  return new RegistryError("REGISTRY_TLS_CONFIG_INVALID", `${registry}: ${message}`, { registry, file }, cause === undefined ? undefined : { cause });
}

/** dockerCertDir: the dir podman would read for `hostPort`, or undefined when no candidate exists. */
export async function certDirFor(hostPort: string, settings: Pick<TlsSettings, "certDir" | "certsDirs">): Promise<string | undefined> {
  if (settings.certDir) return settings.certDir;
  for (const base of settings.certsDirs ?? defaultCertsDirs()) {
    const dir = join(base, hostPort);
    try {
      await stat(dir);
      return dir;
    } catch (err) {
      const code = errCode(err);
      if (code === "ENOENT" || code === "EACCES" || code === "EPERM") continue;
      throw configError(hostPort, dir, `cannot use certificate directory ${dir}: ${(err as Error).message}`, err);
    }
  }
  return undefined;
}

/** Node has no cert pool to append to, so the PEM certificates are picked out as AppendCertsFromPEM would. */
function pemCertificates(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)) {
    try {
      new X509Certificate(m[0]);
      out.push(m[0]);
    } catch {
      // unparsable blocks are skipped, not fatal, as in Go
    }
  }
  return out;
}

let extraRoots: string[] | undefined;
/**
 * Node adds NODE_EXTRA_CA_CERTS to its default store but not to tls.rootCertificates; giving `ca` replaces
 * that store, so without this a certs.d `.crt` would silently drop a corporate CA the user already configured.
 */
function nodeExtraRoots(): string[] {
  if (extraRoots) return extraRoots;
  extraRoots = [];
  const file = process.env.NODE_EXTRA_CA_CERTS;
  if (file) {
    try {
      extraRoots = pemCertificates(readFileSync(file, "utf8"));
    } catch {
      // Node itself only warns about an unreadable NODE_EXTRA_CA_CERTS
    }
  }
  return extraRoots;
}

/** SetupCertificates for one dir. */
async function readCertDir(hostPort: string, dir: string): Promise<Omit<HostTls, "rejectUnauthorized">> {
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch (err) {
    const code = errCode(err);
    if (code === "ENOENT" || code === "EACCES" || code === "EPERM") return {};
    throw configError(hostPort, dir, `cannot read certificate directory ${dir}: ${(err as Error).message}`, err);
  }
  const present = new Set(names);
  const read = async (name: string): Promise<string> => {
    const file = join(dir, name);
    try {
      return await readFile(file, "utf8");
    } catch (err) {
      throw configError(hostPort, file, `cannot read ${file}: ${(err as Error).message}`, err);
    }
  };

  const extra: string[] = [];
  let sawCrt = false;
  let pair: { cert: string; key: string } | undefined;
  for (const name of names) {
    if (name.endsWith(".crt")) {
      let text: string;
      try {
        text = await readFile(join(dir, name), "utf8");
      } catch (err) {
        // a dangling link or a file deleted since the listing: containers/image warns and goes on
        if (errCode(err) === "ENOENT") continue;
        throw configError(hostPort, join(dir, name), `cannot read CA certificate ${join(dir, name)}: ${(err as Error).message}`, err);
      }
      sawCrt = true;
      extra.push(...pemCertificates(text));
    }
    if (name.endsWith(".cert")) {
      const keyName = `${name.slice(0, -".cert".length)}.key`;
      if (!present.has(keyName)) {
        throw configError(hostPort, join(dir, name), `missing key ${keyName} for client certificate ${join(dir, name)} (CA certificates must use the extension .crt)`);
      }
      const cert = await read(name);
      const key = await read(keyName);
      try {
        createSecureContext({ cert, key });
      } catch (err) {
        throw configError(hostPort, join(dir, name), `client certificate ${join(dir, name)} and key ${keyName} do not load as a pair: ${(err as Error).message}`, err);
      }
      // Go keeps every pair and sends the first one the server's CertificateRequest accepts; Node takes one
      // cert per key type, so the first pair by name is the one sent (the same one in the usual one-pair dir).
      pair ??= { cert, key };
    }
    if (name.endsWith(".key")) {
      const certName = `${name.slice(0, -".key".length)}.cert`;
      if (!present.has(certName)) {
        throw configError(hostPort, join(dir, name), `missing client certificate ${certName} for key ${join(dir, name)}`);
      }
    }
  }
  const out: Omit<HostTls, "rejectUnauthorized"> = {};
  if (sawCrt) out.ca = [...rootCertificates, ...nodeExtraRoots(), ...extra];
  if (pair) Object.assign(out, pair);
  if (sawCrt || pair) out.source = dir;
  return out;
}

/** The TLS options podman would use for `hostPort` (`host` or `host:port`, as the URL writes it). Reads the files each call. */
export async function hostTls(hostPort: string, settings: TlsSettings): Promise<HostTls> {
  const dir = await certDirFor(hostPort, settings);
  const found = dir === undefined ? {} : await readCertDir(hostPort, dir);
  return { ...found, rejectUnauthorized: settings.verify(hostPort) };
}

function connectOptions(t: HostTls): buildConnector.BuildOptions {
  const o: buildConnector.BuildOptions = { rejectUnauthorized: t.rejectUnauthorized };
  if (t.ca) o.ca = t.ca;
  if (t.cert !== undefined && t.key !== undefined) Object.assign(o, { cert: t.cert, key: t.key });
  return o;
}

function isSslError(err: unknown): boolean {
  const code = errCode(err);
  return typeof code === "string" && code.startsWith("ERR_SSL_");
}

/**
 * Under TLS 1.3 the server checks the client certificate after the client's handshake has finished, so its
 * refusal (an alert: ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED, ..._UNKNOWN_CA) arrives as a socket error
 * while a request is in flight; undici then sees the EOF and replaces it with its own
 * `SocketError: other side closed`, losing the reason. The alert is kept here as that error's `cause` so
 * tlsErrorFor can still name it. This listener is added before undici's, so the cause is set in time.
 */
function keepTlsAlert(socket: Socket): void {
  let alert: unknown;
  socket.on("error", (err: Error & { cause?: unknown }) => {
    if (alert === undefined && isSslError(err)) {
      alert = err;
      return;
    }
    if (alert !== undefined && err !== alert && err.cause === undefined) {
      Object.defineProperty(err, "cause", { value: alert, configurable: true, writable: true, enumerable: false });
    }
  });
}

/**
 * A spare connection to undici once it is up; one that fails while connecting gives way to a new
 * connection. Never called back inside the call: undici's own connector answers on a socket event,
 * and its client, called back synchronously, left the request waiting forever (seen with undici 7).
 */
function handOver(socket: Socket, callback: buildConnector.Callback, fresh: () => void): void {
  if (!socket.connecting) {
    queueMicrotask(() => callback(null, socket));
    return;
  }
  const onError = (): void => {
    socket.destroy();
    fresh();
  };
  socket.once("error", onError);
  socket.once("connect", () => {
    socket.off("error", onError);
    callback(null, socket);
  });
}

function hostKey(opts: buildConnector.Options): string {
  const key = opts.host ? opts.host : `${opts.hostname.includes(":") ? `[${opts.hostname}]` : opts.hostname}${opts.port ? `:${opts.port}` : ""}`;
  // docker.io's API host: containers/image looks its certificates up under the name in the reference
  return key === "registry-1.docker.io" || key === "registry-1.docker.io:443" ? "docker.io" : key;
}

/** Per settings object and host, so several agents built from one settings share the reads. */
const memo = new WeakMap<TlsSettings, Map<string, Promise<HostTls>>>();

function memoHostTls(hostPort: string, settings: TlsSettings): Promise<HostTls> {
  let hosts = memo.get(settings);
  if (!hosts) memo.set(settings, (hosts = new Map<string, Promise<HostTls>>()));
  let t = hosts.get(hostPort);
  if (!t) {
    t = hostTls(hostPort, settings);
    hosts.set(hostPort, t);
    // a broken dir is read again on the next connection, so fixing it needs no daemon restart
    t.catch(() => hosts.delete(hostPort));
  }
  return t;
}

/**
 * An undici connector applying each registry's certs.d configuration, for `new Agent({ connect: tlsConnector(s) })`.
 * The files are read once per process, settings object and host; each host gets its own buildConnector (and
 * so its own TLS session cache).
 */
export function tlsConnector(settings: TlsSettings, base: buildConnector.BuildOptions = {}, spares?: PlainSpares): buildConnector.connector {
  const plain = buildConnector(base);
  const perHost = new Map<string, Promise<buildConnector.connector>>();
  return (opts, callback) => {
    if (opts.protocol !== "https:") {
      const spare = spares?.take(opts.hostname, Number(opts.port) || 80);
      if (spare) handOver(spare, callback, () => plain(opts, callback));
      else plain(opts, callback);
      return;
    }
    const key = hostKey(opts);
    let connector = perHost.get(key);
    if (!connector) {
      connector = memoHostTls(key, settings).then((t) => buildConnector({ ...base, ...connectOptions(t) }));
      perHost.set(key, connector);
      connector.catch(() => perHost.delete(key));
    }
    connector.then(
      (connect) => {
        // a throw in here would only reject this promise and leave undici waiting for the callback forever
        try {
          connect(opts, (err, socket) => {
            if (err) callback(err, null);
            else {
              keepTlsAlert(socket);
              callback(null, socket);
            }
          });
        } catch (err) {
          callback(err as Error, null);
        }
      },
      (err: Error) => callback(err, null),
    );
  };
}
