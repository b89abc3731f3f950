// Node/OpenSSL TLS failures as RegistryErrors that name the registry and say what to change. Codes seen with
// Node 20 (OpenSSL 3.0) and undici 7.16 against node:https servers (tls.test.ts / tls-errors.test.ts):
//   CA not trusted          UNABLE_TO_VERIFY_LEAF_SIGNATURE (self-signed leaf: DEPTH_ZERO_SELF_SIGNED_CERT)
//   wrong name              ERR_TLS_CERT_ALTNAME_INVALID
//   expired / not yet valid CERT_HAS_EXPIRED / CERT_NOT_YET_VALID
//   no client certificate   TLS 1.3: undici's UND_ERR_SOCKET "other side closed", the server's alert
//                           ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED only as its cause when the connection
//                           came from tlsConnector (which keeps it); TLS 1.2: ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE
//   https to plain HTTP     ERR_SSL_WRONG_VERSION_NUMBER ("wrong version number"); newer OpenSSL record
//                           layers may say ERR_SSL_PACKET_LENGTH_TOO_LONG
import { existsSync } from "node:fs";
import { join } from "node:path";
import { RegistryError, type RegistryErrorCode, type RegistryErrorContext } from "./errors.js";
import { defaultCertsDirs, type TlsSettings } from "./tls.js";

const UNKNOWN_AUTHORITY = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
]);
const NAME_MISMATCH = new Set(["ERR_TLS_CERT_ALTNAME_INVALID", "HOSTNAME_MISMATCH"]);
const EXPIRED = new Set(["CERT_HAS_EXPIRED", "CERT_NOT_YET_VALID"]);
/** the rest of OpenSSL's X509 verify results as Node names them: the server's certificate is refused */
const OTHER_VERIFY = new Set([
  "UNABLE_TO_GET_CRL",
  "UNABLE_TO_DECRYPT_CERT_SIGNATURE",
  "UNABLE_TO_DECRYPT_CRL_SIGNATURE",
  "UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY",
  "CERT_SIGNATURE_FAILURE",
  "CRL_SIGNATURE_FAILURE",
  "CRL_NOT_YET_VALID",
  "CRL_HAS_EXPIRED",
  "ERROR_IN_CERT_NOT_BEFORE_FIELD",
  "ERROR_IN_CERT_NOT_AFTER_FIELD",
  "ERROR_IN_CRL_LAST_UPDATE_FIELD",
  "ERROR_IN_CRL_NEXT_UPDATE_FIELD",
  "CERT_CHAIN_TOO_LONG",
  "CERT_REVOKED",
  "INVALID_CA",
  "PATH_LENGTH_EXCEEDED",
  "INVALID_PURPOSE",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
]);
/** alerts a server sends when it refuses the client certificate we did send */
const CLIENT_CERT_REFUSED = new Set([
  "ERR_SSL_TLSV1_ALERT_UNKNOWN_CA",
  "ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE",
  "ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
  "ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED",
  "ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED",
  "ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN",
  "ERR_SSL_TLSV1_ALERT_ACCESS_DENIED",
]);
const PLAIN_HTTP_CODES = new Set(["ERR_SSL_WRONG_VERSION_NUMBER", "ERR_SSL_PACKET_LENGTH_TOO_LONG"]);

interface NodeTlsError {
  code?: unknown;
  message?: unknown;
  reason?: unknown;
  host?: unknown;
  cert?: { subjectaltname?: unknown; subject?: { CN?: unknown } };
  cause?: unknown;
}

/** err and its causes (undici and this package's own wrappers each add a level), nearest first */
function chain(err: unknown): NodeTlsError[] {
  const out: NodeTlsError[] = [];
  for (let e = err, depth = 0; e !== null && typeof e === "object" && depth < 8; e = (e as NodeTlsError).cause, depth++) {
    out.push(e);
  }
  return out;
}

function codeOf(e: NodeTlsError): string | undefined {
  return typeof e.code === "string" ? e.code : undefined;
}

function isTlsCode(code: string): boolean {
  return (
    UNKNOWN_AUTHORITY.has(code) ||
    NAME_MISMATCH.has(code) ||
    EXPIRED.has(code) ||
    OTHER_VERIFY.has(code) ||
    code.startsWith("ERR_SSL_") ||
    (code.startsWith("ERR_TLS_") && code !== "ERR_TLS_HANDSHAKE_TIMEOUT")
  );
}

function isPlainHttp(e: NodeTlsError): boolean {
  const code = codeOf(e);
  if (code === undefined || !code.startsWith("ERR_SSL_")) return false;
  if (PLAIN_HTTP_CODES.has(code)) return true;
  const text = [e.reason, e.message].filter((t) => typeof t === "string").join(" ");
  return /wrong version number|packet length too long/i.test(text);
}

/**
 * True when an HTTPS attempt failed because the server answered in plain HTTP (the TLS record header was
 * "HTTP/1.x"): the case where podman falls back to http:// for an insecure registry. Never true for a
 * certificate error, which proves the server does speak TLS.
 */
export function speaksPlainHttp(err: unknown): boolean {
  return chain(err).some(isPlainHttp);
}

/** Where podman would read this registry's certificates, to name in the advice. */
function adviceDir(registry: string, settings: Pick<TlsSettings, "certDir" | "certsDirs"> | undefined): string {
  if (settings?.certDir) return settings.certDir;
  const bases = settings?.certsDirs ?? defaultCertsDirs();
  for (const base of bases) {
    if (existsSync(join(base, registry))) return join(base, registry);
  }
  if (settings?.certsDirs?.[0] !== undefined) return join(settings.certsDirs[0], registry);
  // rootless podman reads the home dir first; root is told the system-wide place
  return join(process.getuid?.() === 0 ? "/etc/containers/certs.d" : bases[0] ?? "/etc/containers/certs.d", registry);
}

function detail(e: NodeTlsError): string {
  if (typeof e.reason === "string" && e.reason.trim()) return e.reason.trim();
  // OpenSSL's message is "<hex>:error:<code>:SSL routines:<func>:<reason>:<file>:<line>:"; keep the reason
  const msg = typeof e.message === "string" ? e.message : "";
  const m = /:SSL routines:[^:]*:([^:]+):/.exec(msg);
  return (m?.[1] ?? msg).trim();
}

/**
 * The RegistryError for a TLS failure anywhere in `err`'s cause chain, or undefined when it is not one (a
 * network error, an HTTP error). `registry` is `host[:port]` as certs.d names it; `ctx` is copied into the
 * error's context; `settings` (the ones the connection was made with) make the advice name the right dir.
 */
export function tlsErrorFor(
  err: unknown,
  registry: string,
  ctx: RegistryErrorContext = {},
  settings?: Pick<TlsSettings, "certDir" | "certsDirs">,
): RegistryError | undefined {
  const links = chain(err);
  // already mapped (e.g. REGISTRY_TLS_CONFIG_INVALID from tlsConnector, passed through by undici)
  const mapped = links.find((e): e is RegistryError => e instanceof RegistryError && e.code.startsWith("REGISTRY_TLS_"));
  if (mapped) return mapped;
  const tls = links.find((e) => {
    const code = codeOf(e);
    return code !== undefined && isTlsCode(code);
  });
  if (!tls) return undefined;
  const code = codeOf(tls) ?? "";
  const dir = adviceDir(registry, settings);
  const skip = "or --tls-verify=false to skip verification";
  const make = (c: RegistryErrorCode, what: string): RegistryError =>
    new RegistryError(c, `${registry}: ${what}`, { ...ctx, registry, tlsCode: code, certDir: dir }, { cause: err });

  if (UNKNOWN_AUTHORITY.has(code)) {
    const what = code === "DEPTH_ZERO_SELF_SIGNED_CERT" ? "self-signed certificate" : "certificate signed by unknown authority";
    return make("REGISTRY_TLS_UNKNOWN_AUTHORITY", `${what} (${detail(tls)}); put the CA in ${join(dir, "ca.crt")} or pass --cert-dir, ${skip}`);
  }
  if (NAME_MISMATCH.has(code)) {
    const names = typeof tls.cert?.subjectaltname === "string" ? tls.cert.subjectaltname : undefined;
    const host = typeof tls.host === "string" ? tls.host : registry;
    return make(
      "REGISTRY_TLS_NAME_MISMATCH",
      `the certificate is not valid for ${host}${names ? ` (it is for ${names})` : ""}; use the name the certificate was issued for, ${skip}`,
    );
  }
  if (EXPIRED.has(code)) {
    const what = code === "CERT_NOT_YET_VALID" ? "certificate is not yet valid" : "certificate has expired";
    return make("REGISTRY_TLS_EXPIRED", `${what}; renew the registry's certificate (or fix this machine's clock), ${skip}`);
  }
  if (isPlainHttp(tls)) {
    return make(
      "REGISTRY_TLS_FAILED",
      `the registry answered HTTPS in plain HTTP (${detail(tls)}); if it serves only HTTP, list it as insecure in registries.conf or pass --tls-verify=false`,
    );
  }
  if (code === "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED") {
    return make("REGISTRY_TLS_FAILED", `the registry requires a client certificate; put client.cert and client.key in ${dir}/ or pass --cert-dir`);
  }
  if (code === "ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE") {
    return make(
      "REGISTRY_TLS_FAILED",
      `the registry refused the TLS handshake (${detail(tls)}); if it requires a client certificate, put client.cert and client.key in ${dir}/ or pass --cert-dir`,
    );
  }
  if (CLIENT_CERT_REFUSED.has(code)) {
    return make("REGISTRY_TLS_FAILED", `the registry refused the client certificate (${detail(tls)}); check the *.cert and *.key in ${dir}/`);
  }
  if (OTHER_VERIFY.has(code)) {
    return make("REGISTRY_TLS_FAILED", `certificate rejected (${detail(tls)}); fix the registry's certificate, ${skip}`);
  }
  return make("REGISTRY_TLS_FAILED", `TLS handshake failed (${detail(tls)})`);
}
