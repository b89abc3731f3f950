// certs.d lookup and the per-host undici connector, against real node:https servers with certificates made
// by the openssl CLI (testkit's PKI); nothing of node:tls is mocked.
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createServer as createHttpsServer, type ServerOptions } from "node:https";
import { mkdtemp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { rootCertificates } from "node:tls";
import { makeTestPki, run, type TestPki } from "@lazypull/testkit";
import { Agent, request } from "undici";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { RegistryError } from "./errors.js";
import { hostTls, tlsConnector, type TlsSettings } from "./tls.js";

let tmp: string;
let pki: TestPki;
let ca: string;
let pem: { serverCert: string; serverKey: string; clientCert: string; clientKey: string; otherCa: string };
const servers: HttpServer[] = [];

async function listen(srv: HttpServer): Promise<string> {
  servers.push(srv);
  await new Promise<void>((ok) => srv.listen(0, "127.0.0.1", ok));
  return `127.0.0.1:${(srv.address() as AddressInfo).port}`;
}

function https(extra: ServerOptions = {}): Promise<string> {
  return listen(createHttpsServer({ cert: pem.serverCert, key: pem.serverKey, ...extra }, (_req, res) => res.end("ok")));
}

/** GET through a fresh Agent using the connector; the body, or the rejection */
async function get(host: string, settings: TlsSettings, scheme = "https"): Promise<string> {
  const agent = new Agent({ connect: tlsConnector(settings) });
  try {
    const res = await request(`${scheme}://${host}/`, { dispatcher: agent });
    return await res.body.text();
  } finally {
    await agent.close();
  }
}

/** a certs.d base holding `<host>/` with the given files */
async function certsD(host: string, files: Record<string, string>): Promise<string> {
  const base = await mkdtemp(join(tmp, "certs.d-"));
  await mkdir(join(base, host));
  for (const [name, text] of Object.entries(files)) await writeFile(join(base, host, name), text);
  return base;
}

const verifyAll = () => true;

/** Node's default store also holds NODE_EXTRA_CA_CERTS, which hostTls keeps */
async function nodeExtraCount(): Promise<number> {
  const file = process.env.NODE_EXTRA_CA_CERTS;
  return file ? (await readFile(file, "utf8")).split("-----BEGIN CERTIFICATE-----").length - 1 : 0;
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "lazypull-tls-"));
  pki = await makeTestPki(join(tmp, "pki"));
  // a second CA, trusted by nobody here, to show which dir's files were used
  await run("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "other.key", "-out", "other.crt", "-days", "2", "-subj", "/CN=other-ca"], { cwd: pki.dir });
  ca = await readFile(pki.caCert, "utf8");
  pem = {
    serverCert: await readFile(pki.serverCert, "utf8"),
    serverKey: await readFile(pki.serverKey, "utf8"),
    clientCert: await readFile(pki.clientCert, "utf8"),
    clientKey: await readFile(pki.clientKey, "utf8"),
    otherCa: await readFile(join(pki.dir, "other.crt"), "utf8"),
  };
});

afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((ok) => s.close(ok))));
  await rm(tmp, { recursive: true, force: true });
});

describe("hostTls", () => {
  it("should trust the dir's *.crt on top of Node's default roots, not instead of them", async () => {
    const base = await certsD("reg.example:5000", { "ca.crt": ca });
    const t = await hostTls("reg.example:5000", { certsDirs: [base], verify: verifyAll });
    expect(t.source).toBe(join(base, "reg.example:5000"));
    expect(t.rejectUnauthorized).toBe(true);
    expect(t.ca).toHaveLength(rootCertificates.length + (await nodeExtraCount()) + 1);
    expect(t.ca?.slice(0, rootCertificates.length)).toEqual(rootCertificates);
    expect(t.ca?.at(-1)?.trim()).toBe(ca.trim());
  });

  it("should leave Node's default store alone when there is no dir for the host", async () => {
    const base = await certsD("other.example", { "ca.crt": ca });
    expect(await hostTls("reg.example", { certsDirs: [base], verify: () => false })).toEqual({ rejectUnauthorized: false });
  });

  it("should skip what is not a PEM certificate in a .crt, as AppendCertsFromPEM does", async () => {
    const base = await certsD("reg.example", { "a.crt": "not a certificate\n", "b.crt": `junk\n${ca}\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n` });
    const t = await hostTls("reg.example", { certsDirs: [base], verify: verifyAll });
    expect(t.ca).toHaveLength(rootCertificates.length + (await nodeExtraCount()) + 1);
  });

  it("should use the first existing <base>/<host> only, without merging the later bases", async () => {
    const first = await certsD("reg.example", { "readme.txt": "nothing for TLS here" });
    const second = await certsD("reg.example", { "ca.crt": ca });
    const missing = join(tmp, "no-such-base");
    const t = await hostTls("reg.example", { certsDirs: [missing, first, second], verify: verifyAll });
    expect(t).toEqual({ rejectUnauthorized: true });
    const u = await hostTls("reg.example", { certsDirs: [missing, second, first], verify: verifyAll });
    expect(u.source).toBe(join(second, "reg.example"));
  });

  it("should key the dir on host:port exactly, so host and host:443 are different dirs", async () => {
    const base = await certsD("reg.example:443", { "ca.crt": ca });
    expect((await hostTls("reg.example", { certsDirs: [base], verify: verifyAll })).ca).toBeUndefined();
    expect((await hostTls("reg.example:443", { certsDirs: [base], verify: verifyAll })).ca).toBeDefined();
  });

  it("should take the first *.cert/*.key pair by name", async () => {
    const base = await certsD("reg.example", { "b.cert": pem.clientCert, "b.key": pem.clientKey, "a.cert": pem.serverCert, "a.key": pem.serverKey });
    const t = await hostTls("reg.example", { certsDirs: [base], verify: verifyAll });
    expect(t.cert).toBe(pem.serverCert);
    expect(t.key).toBe(pem.serverKey);
    expect(t.ca).toBeUndefined();
  });

  it.each([
    ["a .cert without its .key", { "client.cert": "x" }, "client.cert", /missing key client\.key/],
    ["a .key without its .cert", { "client.key": "x" }, "client.key", /missing client certificate client\.cert/],
    ["a pair that does not match", { "client.cert": "CLIENT", "client.key": "SERVERKEY" }, "client.cert", /do not load as a pair/],
  ])("should refuse %s with REGISTRY_TLS_CONFIG_INVALID naming the file", async (_what, files, bad, message) => {
    const resolved = Object.fromEntries(Object.entries(files).map(([k, v]) => [k, v === "CLIENT" ? pem.clientCert : v === "SERVERKEY" ? pem.serverKey : v]));
    const base = await certsD("reg.example:5000", { "ca.crt": ca, ...resolved });
    const err = await hostTls("reg.example:5000", { certsDirs: [base], verify: verifyAll }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect(err).toMatchObject({ code: "REGISTRY_TLS_CONFIG_INVALID", context: { registry: "reg.example:5000", file: join(base, "reg.example:5000", bad) } });
    expect((err as Error).message).toMatch(message);
  });
});

describe("tlsConnector", () => {
  it("should connect to a registry whose CA is in its certs.d dir, and not without it", async () => {
    const host = await https();
    const base = await certsD(host, { "ca.crt": ca });
    expect(await get(host, { certsDirs: [base], verify: verifyAll })).toBe("ok");
    const empty = await mkdtemp(join(tmp, "empty-"));
    await expect(get(host, { certsDirs: [empty], verify: verifyAll })).rejects.toMatchObject({ code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE" });
  });

  it("should connect to an untrusted certificate when verify() is false for that host", async () => {
    const host = await https();
    const empty = await mkdtemp(join(tmp, "empty-"));
    expect(await get(host, { certsDirs: [empty], verify: (h) => h !== host })).toBe("ok");
    await expect(get(host, { certsDirs: [empty], verify: (h) => h === host })).rejects.toMatchObject({ code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE" });
  });

  it("should send the .cert/.key pair to a server that requires a client certificate", async () => {
    const host = await https({ ca, requestCert: true, rejectUnauthorized: true });
    const base = await certsD(host, { "ca.crt": ca, "client.cert": pem.clientCert, "client.key": pem.clientKey });
    expect(await get(host, { certsDirs: [base], verify: verifyAll })).toBe("ok");
    // still sent with verification off: podman loads the dir before setting InsecureSkipVerify
    const keysOnly = await certsD(host, { "client.cert": pem.clientCert, "client.key": pem.clientKey });
    expect(await get(host, { certsDirs: [keysOnly], verify: () => false })).toBe("ok");
  });

  it("should fail the request with REGISTRY_TLS_CONFIG_INVALID for a .cert without its .key", async () => {
    const host = await https();
    const base = await certsD(host, { "ca.crt": ca, "client.cert": pem.clientCert });
    await expect(get(host, { certsDirs: [base], verify: verifyAll })).rejects.toMatchObject({
      code: "REGISTRY_TLS_CONFIG_INVALID",
      context: { registry: host, file: join(base, host, "client.cert") },
    });
  });

  it("should use certDir (--cert-dir) for every host instead of certs.d", async () => {
    const host = await https();
    const certDir = await mkdtemp(join(tmp, "cert-dir-"));
    await writeFile(join(certDir, "ca.crt"), ca);
    const wrong = await certsD(host, { "ca.crt": pem.otherCa });
    expect(await get(host, { certDir, certsDirs: [wrong], verify: verifyAll })).toBe("ok");
    const right = await certsD(host, { "ca.crt": ca });
    const emptyCertDir = await mkdtemp(join(tmp, "cert-dir-"));
    await expect(get(host, { certDir: emptyCertDir, certsDirs: [right], verify: verifyAll })).rejects.toMatchObject({ code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE" });
  });

  it("should pass http: connections straight through without looking up TLS settings", async () => {
    const host = await listen(createHttpServer((_req, res) => res.end("plain")));
    const verify = vi.fn(() => true);
    expect(await get(host, { certsDirs: [], verify }, "http")).toBe("plain");
    expect(verify).not.toHaveBeenCalled();
  });

  it("should read a host's files once per settings, and again after a failure", async () => {
    const host = await https();
    const base = await certsD(host, { "ca.crt": ca, "broken.cert": pem.clientCert });
    const verify = vi.fn(() => true);
    const settings: TlsSettings = { certsDirs: [base], verify };
    await expect(get(host, settings)).rejects.toMatchObject({ code: "REGISTRY_TLS_CONFIG_INVALID" });
    await rm(join(base, host, "broken.cert"));
    expect(await get(host, settings)).toBe("ok");
    expect(await get(host, settings)).toBe("ok");
    // three agents, one successful read (after the failed one, which is not kept)
    expect(verify).toHaveBeenCalledTimes(1);
    // a later change is not seen by the same settings: the files are read once per process
    await writeFile(join(base, host, "broken.cert"), pem.clientCert);
    expect(await get(host, settings)).toBe("ok");
  });
});
