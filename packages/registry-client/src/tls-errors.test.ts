// tlsErrorFor and speaksPlainHttp on the errors Node 20 + undici 7 really give: real node:https servers with
// openssl-made certificates (expired, wrong name, self-signed, client-certificate-only), and a plain node:http
// server answering an https:// request.
import { spawn } from "node:child_process";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createServer as createHttpsServer, type ServerOptions } from "node:https";
import { mkdtemp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { connect, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, makeTestPki, run, type TestPki } from "@lazypull/testkit";
import { Agent, request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RegistryError } from "./errors.js";
import { isRetryableError } from "./retry.js";
import { speaksPlainHttp, tlsErrorFor } from "./tls-errors.js";
import { tlsConnector, type TlsSettings } from "./tls.js";

let tmp: string;
let pki: TestPki;
/** a certs.d base with the test CA for every server started by `https()` */
let trusting: string;
const certs: Record<string, string> = {};
const servers: HttpServer[] = [];

async function openssl(...args: string[]): Promise<void> {
  await run("openssl", args, { cwd: pki.dir });
}

async function listen(srv: HttpServer): Promise<string> {
  servers.push(srv);
  await new Promise<void>((ok) => srv.listen(0, "127.0.0.1", ok));
  return `127.0.0.1:${(srv.address() as AddressInfo).port}`;
}

/** an https server with `cert` (a name in `certs`), its host trusted through `trusting` */
async function https(cert: string, extra: ServerOptions = {}): Promise<string> {
  const host = await listen(createHttpsServer({ cert: certs[cert], key: certs.serverKey, ...extra }, (_req, res) => res.end("ok")));
  await mkdir(join(trusting, host));
  await writeFile(join(trusting, host, "ca.crt"), certs.ca!);
  return host;
}

async function untilListening(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((ok) => {
      const sock = connect(port, "127.0.0.1", () => ok(true)).on("error", () => ok(false));
      sock.on("connect", () => sock.destroy());
    });
    if (up) return;
    await new Promise((ok) => setTimeout(ok, 50));
  }
  throw new Error(`nothing listening on ${port}`);
}

/** what a GET through tlsConnector rejects with (fails the test if it succeeds) */
async function failure(host: string, settings: Partial<TlsSettings> = {}, scheme = "https"): Promise<unknown> {
  const agent = new Agent({ connect: tlsConnector({ certsDirs: [trusting], verify: () => true, ...settings }) });
  let res: Awaited<ReturnType<typeof request>>;
  try {
    res = await request(`${scheme}://${host}/`, { dispatcher: agent });
  } catch (err) {
    return err;
  } finally {
    await agent.close();
  }
  throw new Error(`expected a failure, got ${res.statusCode}`);
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "lazypull-tls-errors-"));
  pki = await makeTestPki(join(tmp, "pki"));
  trusting = join(tmp, "certs.d");
  await mkdir(trusting);
  // dates `x509 -req` cannot set: `openssl ca` with an explicit validity window
  await writeFile(
    join(pki.dir, "ca.cnf"),
    "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\ndefault_md = sha256\npolicy = p\nunique_subject = no\nx509_extensions = ext\n[p]\ncommonName = supplied\n[ext]\nsubjectAltName = IP:127.0.0.1\n",
  );
  await writeFile(join(pki.dir, "index.txt"), "");
  await writeFile(join(pki.dir, "serial"), "1000\n");
  const ca = ["ca", "-batch", "-config", "ca.cnf", "-cert", "ca.crt", "-keyfile", "ca.key", "-in", "server.csr", "-notext"];
  await openssl(...ca, "-startdate", "20000101000000Z", "-enddate", "20010101000000Z", "-out", "expired.crt");
  await openssl(...ca, "-startdate", "21000101000000Z", "-enddate", "21010101000000Z", "-out", "future.crt");
  await writeFile(join(pki.dir, "wrong.ext"), "subjectAltName=DNS:wrong.example\n");
  await openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-extfile", "wrong.ext", "-out", "wrong.crt");
  await openssl("req", "-x509", "-key", "server.key", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-days", "2", "-out", "self.crt");
  // a client certificate from a CA the server does not know
  await openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "stranger.key", "-out", "stranger.crt", "-days", "2", "-subj", "/CN=stranger");
  for (const [name, file] of Object.entries({
    ca: "ca.crt",
    server: "server.crt",
    serverKey: "server.key",
    client: "client.crt",
    clientKey: "client.key",
    expired: "expired.crt",
    future: "future.crt",
    wrong: "wrong.crt",
    self: "self.crt",
    stranger: "stranger.crt",
    strangerKey: "stranger.key",
  })) {
    certs[name] = await readFile(join(pki.dir, file), "utf8");
  }
});

afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((ok) => s.close(ok))));
  await rm(tmp, { recursive: true, force: true });
});

describe("tlsErrorFor on real handshakes", () => {
  it("should report an untrusted CA as REGISTRY_TLS_UNKNOWN_AUTHORITY, saying where the CA goes", async () => {
    const host = await https("server");
    const empty = await mkdtemp(join(tmp, "empty-"));
    const err = await failure(host, { certsDirs: [empty] });
    expect(err).toMatchObject({ code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE" });
    const mapped = tlsErrorFor(err, host, { repository: "library/busybox" }, { certsDirs: [empty] });
    expect(mapped).toBeInstanceOf(RegistryError);
    expect(mapped).toMatchObject({
      code: "REGISTRY_TLS_UNKNOWN_AUTHORITY",
      context: { registry: host, repository: "library/busybox", tlsCode: "UNABLE_TO_VERIFY_LEAF_SIGNATURE" },
      cause: err,
    });
    expect(mapped?.message).toContain(`${host}: certificate signed by unknown authority`);
    expect(mapped?.message).toContain(join(empty, host, "ca.crt"));
    expect(mapped?.message).toContain("--tls-verify=false");
    expect(speaksPlainHttp(err)).toBe(false);
    expect(isRetryableError(err)).toBe(false);
  });

  it("should report a self-signed server certificate as REGISTRY_TLS_UNKNOWN_AUTHORITY", async () => {
    const host = await https("self");
    const err = await failure(host);
    expect(err).toMatchObject({ code: "DEPTH_ZERO_SELF_SIGNED_CERT" });
    expect(tlsErrorFor(err, host)).toMatchObject({ code: "REGISTRY_TLS_UNKNOWN_AUTHORITY", message: expect.stringContaining("self-signed") });
    expect(speaksPlainHttp(err)).toBe(false);
  });

  it("should report a certificate for another name as REGISTRY_TLS_NAME_MISMATCH, naming both", async () => {
    const host = await https("wrong");
    const err = await failure(host);
    expect(err).toMatchObject({ code: "ERR_TLS_CERT_ALTNAME_INVALID" });
    const mapped = tlsErrorFor(err, host);
    expect(mapped).toMatchObject({ code: "REGISTRY_TLS_NAME_MISMATCH", context: { registry: host } });
    expect(mapped?.message).toContain("127.0.0.1");
    expect(mapped?.message).toContain("DNS:wrong.example");
    expect(speaksPlainHttp(err)).toBe(false);
    expect(isRetryableError(err)).toBe(false);
  });

  it.each([
    ["expired", "CERT_HAS_EXPIRED", "has expired"],
    ["future", "CERT_NOT_YET_VALID", "not yet valid"],
  ])("should report a %s certificate as REGISTRY_TLS_EXPIRED", async (cert, nodeCode, words) => {
    const host = await https(cert);
    const err = await failure(host);
    expect(err).toMatchObject({ code: nodeCode });
    expect(tlsErrorFor(err, host)).toMatchObject({ code: "REGISTRY_TLS_EXPIRED", message: expect.stringContaining(words) });
    expect(speaksPlainHttp(err)).toBe(false);
    expect(isRetryableError(err)).toBe(false);
  });

  it("should report a missing client certificate (TLS 1.3) as REGISTRY_TLS_FAILED though undici says only 'other side closed'", async () => {
    const host = await https("server", { ca: certs.ca, requestCert: true, rejectUnauthorized: true });
    const err = await failure(host);
    // undici replaces the server's alert with its own socket error; tlsConnector keeps the alert as the cause
    expect(err).toMatchObject({ code: "UND_ERR_SOCKET", cause: { code: "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED" } });
    const mapped = tlsErrorFor(err, host, {}, { certsDirs: [trusting] });
    expect(mapped).toMatchObject({ code: "REGISTRY_TLS_FAILED", context: { tlsCode: "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED" } });
    expect(mapped?.message).toContain(`${host}: the registry requires a client certificate`);
    expect(mapped?.message).toContain(join(trusting, host));
    expect(speaksPlainHttp(err)).toBe(false);
  });

  it("should report a missing client certificate under TLS 1.2 as REGISTRY_TLS_FAILED", async () => {
    const host = await https("server", { ca: certs.ca, requestCert: true, rejectUnauthorized: true, maxVersion: "TLSv1.2" });
    const err = await failure(host);
    expect(err).toMatchObject({ code: "ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE" });
    expect(tlsErrorFor(err, host)).toMatchObject({ code: "REGISTRY_TLS_FAILED", message: expect.stringContaining("client certificate") });
    expect(isRetryableError(err)).toBe(false);
  });

  // A node:https server checks client certificates in JS after the handshake and just closes (no alert, so
  // nothing to name); OpenSSL-based servers send an alert, which is what this one shows.
  it("should report a client certificate an OpenSSL server refuses as REGISTRY_TLS_FAILED", async () => {
    const port = await freePort();
    const args = ["s_server", "-accept", `127.0.0.1:${port}`, "-cert", "server.crt", "-key", "server.key", "-CAfile", "ca.crt", "-Verify", "1", "-verify_return_error", "-www", "-quiet"];
    const server = spawn("openssl", args, { cwd: pki.dir, stdio: "ignore" });
    try {
      await untilListening(port);
      const host = `127.0.0.1:${port}`;
      await mkdir(join(trusting, host));
      await writeFile(join(trusting, host, "ca.crt"), certs.ca!);
      await writeFile(join(trusting, host, "stranger.cert"), certs.stranger!);
      await writeFile(join(trusting, host, "stranger.key"), certs.strangerKey!);
      const err = await failure(host);
      expect(err).toMatchObject({ code: "UND_ERR_SOCKET", cause: { code: "ERR_SSL_TLSV1_ALERT_UNKNOWN_CA" } });
      const mapped = tlsErrorFor(err, host, {}, { certsDirs: [trusting] });
      expect(mapped).toMatchObject({ code: "REGISTRY_TLS_FAILED", context: { tlsCode: "ERR_SSL_TLSV1_ALERT_UNKNOWN_CA" } });
      expect(mapped?.message).toContain("refused the client certificate");
      expect(mapped?.message).toContain(join(trusting, host));
    } finally {
      server.kill();
    }
  });

  it("should pass on REGISTRY_TLS_CONFIG_INVALID from the connector as it is", async () => {
    const host = await https("server");
    await writeFile(join(trusting, host, "client.cert"), certs.client!);
    const err = await failure(host);
    expect(tlsErrorFor(err, host)).toBe(err);
    expect(err).toMatchObject({ code: "REGISTRY_TLS_CONFIG_INVALID" });
  });

  it("should find the TLS failure under this package's own wrapping", async () => {
    const host = await https("expired");
    const err = await failure(host);
    const wrapped = new RegistryError("REGISTRY_UNAVAILABLE", "gave up", { registry: host }, { cause: new RegistryError("REGISTRY_BAD_RESPONSE", "x", {}, { cause: err }) });
    expect(tlsErrorFor(wrapped, host)).toMatchObject({ code: "REGISTRY_TLS_EXPIRED", cause: wrapped });
  });

  it("should not claim errors that are not TLS failures", async () => {
    const host = await listen(createHttpServer());
    await new Promise((ok) => servers.pop()!.close(ok));
    const err = await failure(host);
    expect(err).toMatchObject({ code: "ECONNREFUSED" });
    expect(tlsErrorFor(err, host)).toBeUndefined();
    expect(speaksPlainHttp(err)).toBe(false);
    expect(tlsErrorFor(new RegistryError("REGISTRY_NOT_FOUND", "no"), host)).toBeUndefined();
    expect(tlsErrorFor("a string", host)).toBeUndefined();
    expect(tlsErrorFor(undefined, host)).toBeUndefined();
  });
});

describe("speaksPlainHttp", () => {
  it("should be true for https:// to a plain HTTP server, verifying or not", async () => {
    const host = await listen(createHttpServer((_req, res) => res.end("plain")));
    for (const verify of [true, false]) {
      const err = await failure(host, { verify: () => verify });
      expect(err).toMatchObject({ code: "ERR_SSL_WRONG_VERSION_NUMBER" });
      expect(speaksPlainHttp(err)).toBe(true);
      expect(speaksPlainHttp(new RegistryError("REGISTRY_UNAVAILABLE", "gave up", {}, { cause: err }))).toBe(true);
      expect(tlsErrorFor(err, host)).toMatchObject({ code: "REGISTRY_TLS_FAILED", message: expect.stringContaining("plain HTTP") });
      expect(isRetryableError(err)).toBe(false);
    }
  });

  it("should recognise newer OpenSSL's wording of the same record", () => {
    const err = Object.assign(new Error("error:0A0000C6:SSL routines::packet length too long"), { code: "ERR_SSL_PACKET_LENGTH_TOO_LONG" });
    expect(speaksPlainHttp(err)).toBe(true);
    expect(speaksPlainHttp(Object.assign(new Error("certificate has expired"), { code: "CERT_HAS_EXPIRED" }))).toBe(false);
  });
});
